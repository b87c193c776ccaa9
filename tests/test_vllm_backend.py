"""The vLLM backend.

vllm is not installed here and needs a GPU, so the engine tests skip unless both are present; on such a machine
they check that vLLM's greedy answers on the tiny random-weight model equal the transformers backend's, token
for token. The parts that do not need vllm (sampling settings, the samsum stop token, the kept stop token,
the clear error without vllm) always run, on the real tiny tokenizer.
"""

from __future__ import annotations

import importlib.util

import pytest

from longbench.backends.base import GenerationRequest
from longbench.backends.vllm_engine import generated_ids, newline_token_id, sampling_settings
from longbench.errors import LongBenchError

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    """The tiny model, built offline into a private cache (the environment is restored afterwards)."""
    import os

    saved = dict(os.environ)
    os.environ["LONGBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    from longbench.tinymodel import tiny_model_path

    try:
        yield tiny_model_path()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def request(
    task: str, prompt: str, *, chat: bool, max_new_tokens: int, stop: bool = False
) -> GenerationRequest:
    return GenerationRequest(
        id=f"{task}-{len(prompt)}",
        task=task,
        prompt=prompt,
        chat=chat,
        max_new_tokens=max_new_tokens,
        stop_at_newline=stop,
    )


def test_sampling_settings_are_greedy_with_the_task_budget():
    plain = sampling_settings(request("qasper", "q", chat=True, max_new_tokens=128), 13)
    assert plain == {
        "n": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": -1,
        "repetition_penalty": 1.0,  # never the model's own: vLLM is also told generation_config="vllm"
        "max_tokens": 128,
        "skip_special_tokens": True,
    }
    samsum = sampling_settings(request("samsum", "q", chat=False, max_new_tokens=128, stop=True), 13)
    assert samsum["stop_token_ids"] == [13] and samsum["min_tokens"] == 1
    assert samsum["repetition_penalty"] == 1.0 and "stop" not in samsum


def test_newline_token_is_the_references(tiny_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    newline = newline_token_id(tokenizer)
    assert tokenizer.decode([newline]) == "\n"
    assert newline == tokenizer("\n", add_special_tokens=False).input_ids[-1]


def test_stop_token_is_kept_once():
    assert generated_ids([5, 6, 13], 13) == [5, 6, 13]
    assert generated_ids([5, 6], 13) == [5, 6, 13]
    assert generated_ids([5, 6], None) == [5, 6]
    assert generated_ids([5, 6], "\n") == [5, 6]  # a stop string is not a token id


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed")
def test_without_vllm_the_error_says_what_to_do(tiny_path):
    from longbench.backends import create_backend

    with pytest.raises(LongBenchError, match=r"longbench\[vllm\].*--backend openai"):
        create_backend("vllm", model=str(tiny_path))


@pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed")
def test_cli_without_vllm_fails_with_one_line(tiny_path, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "LONGBENCH_CACHE": str(tiny_path.parent), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "longbench", "predict", "--backend", "vllm", "--model", "builtin:tiny"]
    command += ["--data", "sample", "--tasks", "trec", "--out", str(tmp_path), "--tensor-parallel-size", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("longbench: error: --backend vllm needs vllm")
    assert "Traceback" not in done.stderr and not any(tmp_path.iterdir())


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(not HAVE_VLLM, reason="vllm is not installed (optional extra longbench[vllm])")
@pytest.mark.skipif(HAVE_VLLM and not _cuda(), reason="vllm needs a CUDA GPU")
def test_vllm_matches_transformers_on_the_tiny_model(tiny_path):
    from longbench.backends import create_backend

    requests = [
        request(
            "qasper", "Read this and answer: what colour is the sky? " * 20, chat=True, max_new_tokens=24
        ),
        request("trec", "Question: what is a dog?\nType:", chat=False, max_new_tokens=16),
        request("samsum", "Dialogue: A: hi\nB: hello\nSummary:", chat=False, max_new_tokens=32, stop=True),
    ]
    reference = create_backend("transformers", model=str(tiny_path), dtype="float32", device="cuda:0")
    engine = create_backend("vllm", model=str(tiny_path), dtype="float32", max_model_len=4096)
    try:
        expected = {r.request.id: r.text for r in reference.generate(requests)}
        got = {r.request.id: r.text for r in engine.generate(requests)}
        for item in requests:
            assert engine.job(item).prompt_ids == reference.job(item).ids  # identical model input
    finally:
        reference.close()
        engine.close()
    assert got == expected


# -- streaming, with vLLM's engine stood in by a fake --------------------------------------------------------
# vLLM cannot run here (no GPU, not installed), so these tests put a small fake ``vllm`` package on the path:
# ``LLM(...).llm_engine`` has LLMEngine's ``add_request(request_id, prompt, params)`` / ``step()`` /
# ``has_unfinished_requests()`` and answers each request after a number of steps that depends on its prompt
# length, so requests finish out of submission order. Everything else (tokenizer, runner, files) is real.

FAKE_VLLM = """
import json, os, signal
from types import SimpleNamespace

__version__ = "0.0-fake"
LOG = os.environ["FAKE_VLLM_LOG"]
KILL_AFTER = int(os.environ.get("FAKE_VLLM_KILL_AFTER", "0"))


class SamplingParams:
    def __init__(self, **settings):
        self.settings = settings


class LLMEngine:
    def __init__(self):
        self.waiting = {}
        self.finished = 0
        self.steps = 0
        self.max_in_engine = 0
        self.model_config = SimpleNamespace(max_model_len=4096)

    def add_request(self, request_id, prompt, params):
        checksum = sum(i * t for i, t in enumerate(prompt["prompt_token_ids"]))
        steps = 1 + checksum % 5
        answer = [3 + ord(c) for c in str(checksum)]  # a number naming the prompt, as byte tokens
        self.waiting[request_id] = [steps, answer, params.settings["max_tokens"]]
        self.max_in_engine = max(self.max_in_engine, len(self.waiting))

    def has_unfinished_requests(self):
        return bool(self.waiting)

    def step(self):
        self.steps += 1
        out = []
        for request_id in list(self.waiting):
            entry = self.waiting[request_id]
            entry[0] -= 1
            if entry[0] == 0:
                del self.waiting[request_id]
                ids = entry[1][: entry[2]]
                completion = SimpleNamespace(token_ids=ids, stop_reason=None)
                out.append(SimpleNamespace(request_id=request_id, finished=True, outputs=[completion]))
        for item in out:
            self.finished += 1
            with open(LOG, "a") as log:
                log.write(json.dumps({"text_ids": item.outputs[0].token_ids, "step": self.steps}) + "\\n")
            if KILL_AFTER and self.finished == KILL_AFTER:
                os.kill(os.getpid(), signal.SIGKILL)  # the crash, before the runner sees this step's results
        return out


class LLM:
    def __init__(self, **options):
        assert options["generation_config"] == "vllm"
        with open(LOG + ".options", "w") as file:
            json.dump(options, file)
        self.llm_engine = LLMEngine()
"""


def _run_with_fake_vllm(tmp_path, tiny_path, kill_after: int, *extra: str):
    import os
    import subprocess
    import sys

    package = tmp_path / "fake" / "vllm"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(FAKE_VLLM)
    log = tmp_path / "engine.jsonl"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(package.parent),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "FAKE_VLLM_LOG": str(log),
        "FAKE_VLLM_KILL_AFTER": str(kill_after),
    }
    command = [sys.executable, "-m", "longbench", "predict", "--backend", "vllm", "--model", str(tiny_path),
               "--model-name", "tiny", "--data", "sample", "--tasks", "qasper,multifieldqa_en,hotpotqa",
               "--max-length", "300", "--out", str(tmp_path / "pred"), *extra]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    completed = [line for line in log.read_text().splitlines()] if log.exists() else []
    return done, completed


def _written(tmp_path) -> list[dict]:
    import json

    lines = []
    for task in ("qasper", "multifieldqa_en", "hotpotqa"):
        path = tmp_path / "pred" / "tiny" / f"{task}.jsonl"
        if path.exists():
            lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def test_vllm_results_stream_in_completion_order(tmp_path, tiny_path):
    import json

    from transformers import AutoTokenizer

    done, completed = _run_with_fake_vllm(tmp_path, tiny_path, kill_after=0)
    assert done.returncode == 0, done.stderr
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    engine_order = [tokenizer.decode(json.loads(line)["text_ids"]) for line in completed]
    assert len(set(engine_order)) == len(engine_order) > 3  # each answer names its request
    written = _written(tmp_path)
    assert sorted(line["pred"] for line in written) == sorted(engine_order)
    for task in ("qasper", "multifieldqa_en", "hotpotqa"):
        lines = (tmp_path / "pred" / "tiny" / f"{task}.jsonl").read_text().splitlines()
        in_file = [json.loads(line)["pred"] for line in lines]
        assert in_file == [text for text in engine_order if text in in_file]  # the engine's finishing order
    submitted = [line["pred"] for line in written]  # files hold each task's samples...
    assert engine_order != submitted  # ...and the engine finished them in another order


def test_stream_pulls_requests_lazily():
    """In-process fake engine: requests are taken from the iterator only as room frees up."""
    from types import SimpleNamespace

    from longbench.backends.vllm_engine import VLLMJob, stream_completions

    pulled = []

    class Engine:
        def __init__(self):
            self.live = []

        def add_request(self, request_id, prompt, params):
            self.live.append(request_id)

        def step(self):
            done, self.live = self.live[-1:], self.live[:-1]  # the newest finishes first
            return [SimpleNamespace(request_id=r, finished=True, outputs=[]) for r in done]

    def jobs():
        for index in range(6):
            pulled.append(index)
            yield VLLMJob(request("qasper", str(index), chat=True, max_new_tokens=4), (1, 2), {})

    stream = stream_completions(Engine(), jobs(), lambda job: None, in_flight=2)
    first = next(stream)
    assert pulled == [0, 1] and first[0].request.prompt == "1"
    order = [first[0].request.prompt] + [job.request.prompt for job, _ in stream]
    assert sorted(order) == [str(i) for i in range(6)] and order != sorted(order)


def test_vllm_kill_loses_only_in_flight_work(tmp_path, tiny_path):
    """The process is SIGKILLed inside the engine step that finishes the 4th request: every result of the
    earlier steps is on disk, and a second run generates only the rest."""
    import json

    done, completed = _run_with_fake_vllm(tmp_path, tiny_path, kill_after=4)
    assert done.returncode == -9
    steps = [json.loads(line)["step"] for line in completed]
    handed_over = sum(step < steps[-1] for step in steps)  # results of steps that returned before the kill
    assert handed_over > 0
    assert len(_written(tmp_path)) == handed_over
    first = len(_written(tmp_path))
    (tmp_path / "engine.jsonl").unlink()
    again, rerun = _run_with_fake_vllm(tmp_path.joinpath("."), tiny_path, kill_after=0)
    assert again.returncode == 0, again.stderr
    assert len(_written(tmp_path)) == first + len(rerun)  # nothing done twice, nothing lost


def test_parallel_sizes_go_to_vllm(tmp_path, tiny_path):
    """--tensor/--pipeline/--data-parallel-size reach vLLM's LLM(...) as given (vLLM spreads them, over Ray
    across nodes), and run.json records them."""
    import json

    sizes = ["--tensor-parallel-size", "2", "--pipeline-parallel-size", "3", "--data-parallel-size", "4"]
    done, _ = _run_with_fake_vllm(tmp_path, tiny_path, 0, *sizes)
    assert done.returncode == 0, done.stderr
    options = json.loads((tmp_path / "engine.jsonl.options").read_text())
    assert (
        options["tensor_parallel_size"],
        options["pipeline_parallel_size"],
        options["data_parallel_size"],
    ) == (
        2,
        3,
        4,
    )
    settings = json.loads((tmp_path / "pred" / "tiny" / "run.json").read_text())["backend_settings"]
    assert (settings["pipeline_parallel_size"], settings["data_parallel_size"]) == (3, 4)
