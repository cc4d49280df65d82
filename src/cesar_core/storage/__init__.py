"""Where job audio lives between submission and transcription."""
