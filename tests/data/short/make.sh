#!/usr/bin/env bash
# Regenerates the short clips (needs espeak-ng, sox and ffmpeg): one sentence each, in
# several voices and speeds, for the tests of short jobs sharing a window.
set -euo pipefail
cd "$(dirname "$0")"
voices=(en en-us en-gb-x-rp en+m3 en-us+f2 en+f4)
speeds=(150 140 160 130 155 145)
i=0
for name in $(python3 -c 'import json;print(" ".join(sorted(json.load(open("references.json")))))'); do
  text=$(python3 -c "import json;print(json.load(open('references.json'))['$name'])")
  espeak-ng -v "${voices[$i]}" -s "${speeds[$i]}" -w "$name.raw.wav" "$text"
  sox "$name.raw.wav" -r 16000 -c 1 -b 16 "$name.wav"
  ffmpeg -loglevel error -y -i "$name.wav" -c:a libopus -b:a 32k "$name.opus"
  rm "$name.raw.wav" "$name.wav"
  i=$((i + 1))
done
