"""Features with kaldi-native-fbank, configured from a model's config.json
`features` block: the same settings hark reads, so training and serving see
identical input (tests/fixtures/fbank_golden.safetensors checks hark against
this code)."""

from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import soundfile
from scipy.io import wavfile
from scipy.signal import resample_poly

SAMPLE_RATE_HZ = 16000

# The settings every hark model uses unless its config says otherwise.
DEFAULT_FEATURES = {
    "sample_frequency": 16000,
    "frame_length_ms": 25,
    "frame_shift_ms": 10,
    "dither": 0,
    "preemph_coeff": 0.97,
    "remove_dc_offset": True,
    "window_type": "povey",
    "round_to_power_of_two": True,
    "snip_edges": True,
    "num_bins": 80,
    "low_freq": 20,
    "high_freq": 0,
    "use_energy": False,
    "use_log_fbank": True,
    "use_power": True,
    "sample_scale": 32768,
    "normalize": "utterance_mean",
}


def fbank_options(cfg: dict) -> knf.FbankOptions:
    o = knf.FbankOptions()
    f = o.frame_opts
    f.samp_freq = cfg["sample_frequency"]
    f.frame_length_ms = cfg["frame_length_ms"]
    f.frame_shift_ms = cfg["frame_shift_ms"]
    f.dither = cfg["dither"]
    f.preemph_coeff = cfg["preemph_coeff"]
    f.remove_dc_offset = cfg["remove_dc_offset"]
    f.window_type = cfg["window_type"]
    f.round_to_power_of_two = cfg["round_to_power_of_two"]
    f.snip_edges = cfg["snip_edges"]
    m = o.mel_opts
    m.num_bins = cfg["num_bins"]
    m.low_freq = cfg["low_freq"]
    m.high_freq = cfg["high_freq"]
    o.use_energy = cfg["use_energy"]
    o.use_log_fbank = cfg["use_log_fbank"]
    o.use_power = cfg["use_power"]
    return o


def compute(samples: np.ndarray, cfg: dict = DEFAULT_FEATURES) -> np.ndarray:
    """16 kHz mono float samples in [-1, 1] → (frames, bins) float32."""
    fb = knf.OnlineFbank(fbank_options(cfg))
    fb.accept_waveform(SAMPLE_RATE_HZ, samples.astype(np.float32) * np.float32(cfg["sample_scale"]))
    fb.input_finished()
    n = fb.num_frames_ready
    if n == 0:
        return np.zeros((0, cfg["num_bins"]), dtype=np.float32)
    feats = np.stack([fb.get_frame(i) for i in range(n)]).astype(np.float32)
    if cfg["normalize"] == "utterance_mean":
        feats -= feats.mean(axis=0, keepdims=True)
    return feats


def read_audio(path) -> np.ndarray:
    """Reads audio as mono float32 at 16 kHz: a 16-bit PCM or 32-bit float
    WAV, or any other file libsndfile reads (the Ogg Opus parts of
    `hark_train.pack`).

    Audio at other rates should come through `hark decode` first (see
    prepare_fsdd.py): then training hears exactly what hark hears, down to
    its resampler. The resampling here is for quick experiments."""
    if Path(path).suffix.lower() == ".wav":
        rate, x = wavfile.read(str(path))
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        elif x.dtype != np.float32:
            raise ValueError(f"{path}: expected 16-bit PCM or 32-bit float, got {x.dtype}")
    else:
        x, rate = soundfile.read(str(path), dtype="float32")
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != SAMPLE_RATE_HZ:
        g = np.gcd(rate, SAMPLE_RATE_HZ)
        x = resample_poly(x, SAMPLE_RATE_HZ // g, rate // g)
    return x.astype(np.float32)
