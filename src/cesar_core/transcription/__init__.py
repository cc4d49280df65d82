"""Audio in, transcript out: decoding, model resolution, the faster-whisper engine, formats."""
