"""The official OpenAI Python client against a running hark.

    python tests/openai_client.py BASE_URL WAV

Run by tests/server.rs; prints what the client returned, one line per call.
"""

import sys

from openai import OpenAI

base_url, wav = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key="sk-test")

with open(wav, "rb") as f:
    result = client.audio.transcriptions.create(model="whisper-1", file=f, language="en")
print(f"json: {result.text}")

with open(wav, "rb") as f:
    verbose = client.audio.transcriptions.create(
        model="whisper-1", file=f, response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
print(f"words: {' '.join(w.word for w in verbose.words)}")
assert verbose.words[0].end > verbose.words[0].start
print(f"segments: {len(verbose.segments)}")

with open(wav, "rb") as f:
    srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
print("srt: " + srt.replace("\n", " | "))

models = client.models.list()
print(f"models: {[m.id for m in models.data]}")
