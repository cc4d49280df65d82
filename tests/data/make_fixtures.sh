#!/usr/bin/env bash
# Regenerates the committed speech fixtures (needs espeak-ng, sox and ffmpeg).
# The spoken text of each file is in references.json; tests compare against it by word
# error rate, so small differences between espeak-ng versions do not matter.
set -euo pipefail
cd "$(dirname "$0")"
say() { espeak-ng -v "$1" -s "$2" -w "$3.raw.wav" "$4"; sox "$3.raw.wav" -r 16000 -c 1 -b 16 "$3"; rm "$3.raw.wav"; }
EN=$(python3 -c 'import json;print(json.load(open("references.json"))["speech_en"])')
ES=$(python3 -c 'import json;print(json.load(open("references.json"))["speech_es"])')
LONG=$(python3 -c 'import json;print(json.load(open("references.json"))["long_en"])')
say en 130 speech_en.wav "$EN"
say es 140 speech_es.wav "$ES"
say en 125 long_en.wav "$LONG"
ff() { ffmpeg -loglevel error -y "$@"; }
ff -i speech_en.wav speech_en.flac
ff -i speech_en.wav -b:a 64k speech_en.mp3
ff -i speech_en.wav -c:a aac -b:a 64k speech_en.m4a
ff -i speech_en.wav -c:a libvorbis -q:a 4 speech_en.ogg
ff -i speech_en.wav -c:a libopus -b:a 48k speech_en.opus
ff -f lavfi -i color=c=blue:s=64x64:r=5 -i speech_en.wav -shortest -c:v libx264 -crf 40 -c:a aac -b:a 64k speech_en.mp4
ff -f lavfi -i color=c=red:s=64x64:r=5 -t 3 -c:v libx264 -crf 40 video_only.mp4
ff -i speech_es.wav -c:a libopus -b:a 48k speech_es.opus
ff -i long_en.wav -c:a libopus -b:a 48k long_en.opus
rm speech_es.wav long_en.wav
