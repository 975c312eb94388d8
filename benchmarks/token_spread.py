"""How much a seq2seq model's hidden states still differ between tokens: the package's measure
(`hf_gradinit.token_spread`), under the name the benchmark scripts import. Its stacks are named "encoder",
"decoder_0", "decoder_1", …; results written before it moved into the package say "decoder@0", "decoder@1", …"""

from hf_gradinit.token_spread import token_spread  # noqa: F401
