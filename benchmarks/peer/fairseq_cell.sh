# §2V's cell in the authors' fairseq flags, sourced by runs.sh and throughput.sh so that both run the same model,
# optimizer and search: the fork's transformer_iwslt_de_en at d 128 (the package's `--model_type transformer
# --init fairseq` with §2V's --config_overrides), Adam (0.9, 0.98) at lr 1e-3 constant, no clipping, label
# smoothing 0.1, 1,600-token batches; the search with the authors' run-script flags, η 2e-3 = 2 × lr and 2,000-token
# batches as the package's 0.2 defaults. DROPOUT (default 0.1) sets the three dropouts.
FAIRSEQ_CELL=(
  --arch transformer_iwslt_de_en --share-decoder-input-output-embed
  --encoder-embed-dim 128 --decoder-embed-dim 128 --encoder-ffn-embed-dim 512 --decoder-ffn-embed-dim 512
  --encoder-layers 6 --decoder-layers 6 --encoder-attention-heads 4 --decoder-attention-heads 4
  --dropout "${DROPOUT:-0.1}" --attention-dropout "${DROPOUT:-0.1}" --activation-dropout "${DROPOUT:-0.1}"
  --optimizer adam --adam-betas "(0.9, 0.98)" --adam-eps 1e-8 --weight-decay 1e-4 --clip-norm 0.0
  --lr 1e-3 --lr-scheduler fixed
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1
  --max-tokens 1600 --cpu --num-workers 0 --user-dir gradinit/utils
)
FAIRSEQ_SEARCH=(
  --use-gradinit --gradinit-iters "${SEARCH_ITERS:-780}" --gradinit-max-tokens 2000 --gradinit-lr 2.5e-3
  --gradinit-beta1 0.9 --gradinit-beta2 0.98 --gradinit-eta 2e-3 --gradinit-gamma 1000 --gradinit-min-scale 0.01
  --gradinit-max-scale 100 --gradinit-grad-clip 1e8
)
