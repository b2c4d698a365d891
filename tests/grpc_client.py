"""A Python grpcio client against a running hark's gRPC API, with stubs
generated from proto/hark/v1/recognizer.proto when it runs.

    python tests/grpc_client.py ADDR WAV MP3 STREAM_PCM16 STREAM_WEBM

Run by tests/grpc.rs; prints one JSON object per call.
"""

import json
import os
import sys
import tempfile
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_tools import protoc

addr, wav, mp3, stream_path, webm_path = sys.argv[1:6]
proto_root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")
stubs = tempfile.mkdtemp()
status = protoc.main(
    ["protoc", f"-I{proto_root}", f"--python_out={stubs}", f"--grpc_python_out={stubs}", os.path.join(proto_root, "hark/v1/recognizer.proto")]
)
assert status == 0, "protoc failed"
sys.path.insert(0, stubs)
from hark.v1 import recognizer_pb2 as pb  # noqa: E402
from hark.v1 import recognizer_pb2_grpc as pb_grpc  # noqa: E402


def emit(call, **fields):
    print(json.dumps({"call": call, **fields}), flush=True)


channel = grpc.insecure_channel(addr)
health = health_pb2_grpc.HealthStub(channel)
for service in ["", "hark.v1.Recognizer"]:
    reply = health.Check(health_pb2.HealthCheckRequest(service=service))
    emit("health", service=service, status=health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
replies = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
emit("reflection", services=sorted(s.name for reply in replies for s in reply.list_services_response.service))

recognizer = pb_grpc.RecognizerStub(channel)
models = recognizer.ListModels(pb.ListModelsRequest())
emit("list_models", ids=[m.id for m in models.models], sample_rate_hz=[m.sample_rate_hz for m in models.models])

for path in [wav, mp3]:
    with open(path, "rb") as f:
        reply = recognizer.Recognize(pb.RecognizeRequest(audio=f.read()))
    emit(
        "recognize",
        file=os.path.basename(path),
        text=reply.text,
        duration=reply.duration,
        words=[[w.word, w.start, w.end, w.confidence] for w in reply.words],
        tokens=[[t.text, t.start, t.end, list(t.words)] for t in reply.tokens],
        segments=len(reply.segments),
        model=reply.model,
    )

with open(wav, "rb") as f:
    audio = f.read()
beam = pb.DecodingConfig(decoder=pb.DecodingConfig.BEAM, alternatives=3)
reply = recognizer.Recognize(pb.RecognizeRequest(audio=audio, decoding=beam))
emit("recognize_n_best", text=reply.text, alternatives=[a.text for a in reply.alternatives])

spoken = pb.DecodingConfig(text_format=pb.DecodingConfig.SPOKEN)
reply = recognizer.Recognize(pb.RecognizeRequest(audio=audio, decoding=spoken))
emit("recognize_spoken", text=reply.text, words=len(reply.words), tokens=len(reply.tokens))

reply = recognizer.Align(pb.AlignRequest(audio=audio, text="Three!", characters=True))
emit(
    "align",
    words=[[w.word, w.start, w.end, w.score, w.aligned, "".join(c.char for c in w.characters)] for w in reply.words],
    duration=reply.duration,
    model=reply.model,
)
try:
    recognizer.Align(pb.AlignRequest(audio=audio, text="   "))
    emit("align_error", code="OK")
except grpc.RpcError as e:
    emit("align_error", code=e.code().name, details=e.details())

for name, request in [
    ("not_audio", pb.RecognizeRequest(audio=b"<html>not audio</html>")),
    ("greedy_with_hotwords", pb.RecognizeRequest(audio=audio, decoding=pb.DecodingConfig(decoder=pb.DecodingConfig.GREEDY, hotwords=["seven"]))),
]:
    try:
        recognizer.Recognize(request)
        emit("error", name=name, code="OK")
    except grpc.RpcError as e:
        emit("error", name=name, code=e.code().name, details=e.details())

# Bytes that are not a RecognizeRequest at all: the client's error.
raw = channel.unary_unary("/hark.v1.Recognizer/Recognize", request_serializer=None, response_deserializer=None)
try:
    raw(b"\x0a\xff\xff\xff\xff\x0f")
    emit("error", name="malformed_message", code="OK")
except grpc.RpcError as e:
    emit("error", name="malformed_message", code=e.code().name, details=e.details())


def requests():
    yield pb.StreamingRecognizeRequest(config=pb.StreamingConfig(sample_rate_hz=16000))
    with open(stream_path, "rb") as f:
        pcm = f.read()
    for i in range(0, len(pcm), 3200):  # 100 ms of 16 kHz PCM16, at real time
        time.sleep(0.1)
        yield pb.StreamingRecognizeRequest(audio=pcm[i : i + 3200])


for reply in recognizer.StreamingRecognize(requests()):
    kind = pb.StreamingRecognizeResponse.ResultType.Name(reply.type)
    emit("stream", type=kind, text=reply.text, start=reply.start, end=reply.end, words=[[w.word, w.start, w.end] for w in reply.words])


def webm_requests():
    """The same speech as a browser records it, in 4 KB messages."""
    yield pb.StreamingRecognizeRequest(config=pb.StreamingConfig(encoding=pb.StreamingConfig.WEBM_OPUS))
    with open(webm_path, "rb") as f:
        webm = f.read()
    for i in range(0, len(webm), 4096):
        yield pb.StreamingRecognizeRequest(audio=webm[i : i + 4096])


for reply in recognizer.StreamingRecognize(webm_requests()):
    kind = pb.StreamingRecognizeResponse.ResultType.Name(reply.type)
    emit("webm_stream", type=kind, text=reply.text, start=reply.start, end=reply.end)

webm_with_rate = pb.StreamingRecognizeRequest(config=pb.StreamingConfig(sample_rate_hz=48000, encoding=pb.StreamingConfig.WEBM_OPUS))
nan_endpoint = pb.StreamingRecognizeRequest(config=pb.StreamingConfig(sample_rate_hz=16000, endpoint_silence_s=float("nan")))
for name, first in [("audio_first", pb.StreamingRecognizeRequest(audio=b"\0\0")), ("nan_endpoint", nan_endpoint), ("webm_with_rate", webm_with_rate)]:
    try:
        for reply in recognizer.StreamingRecognize(iter([first])):
            pass
        emit("stream_error", name=name, code="OK")
    except grpc.RpcError as e:
        emit("stream_error", name=name, code=e.code().name, details=e.details())
