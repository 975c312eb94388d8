# Sourced by the run drivers (confirm_runs.sh, regime_runs.sh): what of a finished run is kept for committing.

keep_results() {  # keep_results OUT RESULTS RESULT: OUT/RESULT, and each C search's scales.json (not its plots)
  local out=$1 results=$2 result=$3 folder
  cp "$out/$result" "$results/"
  for folder in "$out"/gradinit_C*; do  # the search's scales.json: its ‖g‖ per iteration and its report
    if [ -f "$folder/scales.json" ]; then
      mkdir -p "$results/$(basename "$folder")" && cp "$folder/scales.json" "$results/$(basename "$folder")/"
    fi
  done
}
