#!/usr/bin/env bash
# Regenerates the short Spanish clips (needs espeak-ng, sox and ffmpeg): one sentence each,
# for the tests of short jobs on the multilingual model packed by detected language.
set -euo pipefail
cd "$(dirname "$0")"
speeds=(140 150)
i=0
for name in $(python3 -c 'import json;print(" ".join(sorted(json.load(open("references.json")))))'); do
  text=$(python3 -c "import json;print(json.load(open('references.json'))['$name'])")
  espeak-ng -v es -s "${speeds[$i]}" -w "$name.raw.wav" "$text"
  sox "$name.raw.wav" -r 16000 -c 1 -b 16 "$name.wav"
  ffmpeg -loglevel error -y -i "$name.wav" -c:a libopus -b:a 32k "$name.opus"
  rm "$name.raw.wav" "$name.wav"
  i=$((i + 1))
done
