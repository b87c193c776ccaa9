"""The library API: ``predict``, ``evaluate``, ``compare`` and ``compress`` taking typed options.

Everything the ``longbench`` command does happens here; the CLI only parses its arguments into these
options and prints what the functions return. Nothing here prints. Bad settings raise
:class:`SettingError`, whose message names the setting (the option's field name).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longbench.errors import LongBenchError, SettingError

if TYPE_CHECKING:  # imported lazily at run time, to keep start-up fast
    from longbench.backends.base import Backend
    from longbench.backends.ray_replicas import RaySettings
    from longbench.benchmarks.base import RunSpec, ScoreSettings
    from longbench.benchmarks.v2_run import V2Subset
    from longbench.compare_runs import RunComparison
    from longbench.compression.pipeline import CompressSettings, Ranker
    from longbench.reports import Table
    from longbench.runner import PredictSummary


# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class BackendOptions:
    """How to build a backend; each field applies to the backends its comment names."""

    dtype: str = "auto"  # transformers, vllm
    device: str | None = None  # transformers (and dense compression)
    batch_size: int = 1  # transformers (and Ray chunks, dense compression)
    chat_template: str = "auto"  # none|auto|tokenizer|PATH
    trust_remote_code: bool = False
    revision: str | None = None
    attn_implementation: str | None = None  # transformers
    chat_template_kwargs: str | dict[str, object] | None = None  # a JSON object, or its text
    think_tags: str | None = "<think>,</think>"  # "OPEN,CLOSE" or "none"; None: the default tags
    base_urls: tuple[str, ...] = ()  # openai
    api_key_env: str | None = None
    concurrency: int = 16
    request_timeout: float = 600.0
    unreachable_timeout: float = 120.0
    max_retries: int = 6
    tokenizer: str | None = None
    completion_as_chat: bool = False
    token_limit_parameter: str = "max_tokens"
    omit_temperature: bool = False
    tensor_parallel_size: int = 1  # vllm
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    max_model_len: int | None = None
    ray: str | None = None  # local|auto|ray://HOST:PORT: replicas as Ray actors
    replicas: int = 1
    gpus_per_replica: int | None = None


@dataclass(frozen=True)
class V2Options:
    """LongBench v2's mode, temperature and subset (``predict`` with ``v2=True`` only)."""

    cot: bool = False
    no_context: bool = False
    rag: int = 0
    temperature: float | None = None  # None: the reference's 0.1
    difficulty: str | None = None
    length: str | None = None
    domain: tuple[str, ...] | None = None
    ids: Path | None = None  # a file, one _id a line

    def subset_given(self) -> bool:
        return any(value is not None for value in (self.difficulty, self.length, self.domain, self.ids))


@dataclass(frozen=True)
class PredictOptions:
    """What ``predict`` generates, from which data, into which folder."""

    model: str
    backend: str = "transformers"
    engine: BackendOptions = field(default_factory=BackendOptions)
    tasks: tuple[str, ...] | None = None
    category: str | None = None
    e: bool = False
    v2: bool = False
    v2_options: V2Options = field(default_factory=V2Options)
    data: str = "hub"
    verify: bool = True
    max_length: int | None = None
    limit: int | None = None
    out: Path | None = None  # default pred, pred_e or pred_v2
    model_name: str | None = None
    allow_version_change: bool = False
    dump_prompts: Path | None = None
    shard: str | None = None  # "I/N" or "auto" (the Slurm job array)
    top_k: int | None = None
    seed: int | None = None
    thinking_budget: int = 0


@dataclass(frozen=True)
class EvalOptions:
    """What ``evaluate`` scores and which tables and files it makes."""

    pred_dirs: Sequence[Path]
    e: bool = False
    v2: bool = False
    out: Path | None = None  # default: the benchmark's metrics folder for the models
    corrected: bool = False
    compensated: bool = False
    tasks: tuple[str, ...] | None = None
    workers: int | None = None
    published: bool = False
    ci: bool = False
    plots: bool | None = None  # None: when matplotlib is installed


@dataclass(frozen=True)
class EvalReport:
    """What ``evaluate`` scored and wrote: the tables and notes to show, and the output set."""

    results: list[Any]  # per model, as the benchmark's score half gives them (result_json(), ...)
    tables: list[Table]
    notes: list[str]
    out_dir: Path
    files: list[Path]


@dataclass(frozen=True)
class CompareOptions:
    """Two prediction folders (or groups of shard or seed folders) to compare."""

    pred_dirs: Sequence[Path]
    e: bool = False
    v2: bool = False
    out: Path | None = None
    corrected: bool = False
    compensated: bool = False
    tasks: tuple[str, ...] | None = None
    workers: int | None = None


@dataclass(frozen=True)
class CompareReport:
    comparison: RunComparison
    table: Table
    notes: list[str]
    out_dir: Path
    files: list[Path]


@dataclass(frozen=True)
class CompressOptions:
    """How ``compress`` ranks or summarizes contexts into a derived data folder."""

    method: str = "bm25"  # bm25|dense|summary
    bm25_tokens: str = "characters"
    chunk_size: int = 500
    embedder: str | None = None  # dense
    model: str | None = None  # summary
    backend: str = "transformers"  # summary
    engine: BackendOptions = field(default_factory=lambda: BackendOptions(batch_size=32))
    tasks: tuple[str, ...] | None = None
    e: bool = False
    v2: bool = False
    data: str = "hub"
    limit: int | None = None
    out: Path | None = None  # default compressed/<method>-c<N>


@dataclass(frozen=True)
class CompressSummary:
    out_dir: Path
    written: int
    skipped: int


# ---------------------------------------------------------------------------------------------- checks


def _positive(value: int | None, setting: str) -> None:
    if value is not None and value < 1:
        raise SettingError("{" + setting + "} must be at least 1, got {value}", value=value)


def benchmark_name(v2: bool, e: bool) -> str:
    """The registry name of the benchmark chosen by the ``v2`` and ``e`` settings."""
    if v2 and e:
        raise SettingError("{v2} and {e} are two benchmarks; choose one")
    return "v2" if v2 else "e" if e else "v1"


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` as (I, N), ``"auto"`` from the Slurm job array, None for the whole run."""
    if text is None:
        return None
    if text == "auto":
        from longbench.slurm import shard_from_slurm

        return shard_from_slurm(os.environ)
    index, _, count = text.partition("/")
    if not (index.strip().isdigit() and count.strip().isdigit()) or not 0 <= int(index) < int(count):
        raise SettingError(
            "{shard} {text!r}: expected I/N with 0 <= I < N (shards are numbered from 0)", text=text
        )
    return int(index), int(count)


def chat_template_kwargs(value: str | dict[str, object] | None) -> dict[str, object] | None:
    """The chat template's extra variables, from a JSON object or its text."""
    if value is None or isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise SettingError("{chat_template_kwargs}: not valid JSON ({msg})", msg=error.msg) from None
    if not isinstance(parsed, dict):
        raise SettingError(
            "{chat_template_kwargs}: expected a JSON object, e.g. {example}",
            example="'{\"enable_thinking\": false}'",
        )
    return parsed


def think_tags(text: str | None) -> tuple[str, str] | None:
    """The thinking delimiters from ``"OPEN,CLOSE"`` (``"none"``: None; None: the default tags)."""
    from longbench.thinking import DEFAULT_THINK_TAGS, parse_think_tags

    if text is None:
        return DEFAULT_THINK_TAGS
    try:
        return parse_think_tags(text)
    except ValueError as error:
        raise SettingError("{think_tags}: {error}", error=error) from None


# ---------------------------------------------------------------------------------------------- backends


def _server_options(backend: str, model: str, options: BackendOptions) -> dict[str, object]:
    """Constructor options of the openai or vllm backend."""
    if backend == "openai":
        return {
            "model": model,
            "base_urls": [url.strip() for url in options.base_urls if url.strip()],
            "api_key_env": options.api_key_env,
            "concurrency": options.concurrency,
            "request_timeout": options.request_timeout,
            "tokenizer": options.tokenizer,
            "completion_tasks_as_chat": options.completion_as_chat,
            "max_retries": options.max_retries,
            "token_limit_parameter": options.token_limit_parameter,
            "send_temperature": not options.omit_temperature,
            "chat_template_kwargs": chat_template_kwargs(options.chat_template_kwargs),
            "unreachable_timeout": options.unreachable_timeout,
        }
    if backend == "vllm":
        return {
            "model": model,
            "tensor_parallel_size": options.tensor_parallel_size,
            "pipeline_parallel_size": options.pipeline_parallel_size,
            "data_parallel_size": options.data_parallel_size,
            "max_model_len": options.max_model_len,
            "trust_remote_code": options.trust_remote_code,
            "dtype": options.dtype or "auto",
            "chat_template": options.chat_template or "auto",
            "revision": options.revision,
            "chat_template_kwargs": chat_template_kwargs(options.chat_template_kwargs),
        }
    raise LongBenchError(f"no backend options for {backend!r}")


def engine_options(backend: str, model: str, options: BackendOptions) -> dict[str, object]:
    """Constructor options of ``backend`` for ``model``."""
    from longbench.tinymodel import resolve_model

    tags = think_tags(options.think_tags)
    if backend == "transformers":
        return {
            "model": resolve_model(model),
            "dtype": options.dtype or "auto",
            "device": options.device,
            "batch_size": options.batch_size,
            "chat_template": options.chat_template,
            "trust_remote_code": options.trust_remote_code,
            "revision": options.revision,
            "attn_implementation": options.attn_implementation,
            "chat_template_kwargs": chat_template_kwargs(options.chat_template_kwargs),
            "think_tags": tags,
        }
    built = _server_options(backend, model, options)
    if backend == "vllm":
        built["model"] = resolve_model(model)
    return {**built, "think_tags": tags}


def ray_settings(options: BackendOptions) -> RaySettings | None:
    """The Ray replica settings, or None for a run in this process (``replicas`` alone is refused)."""
    from longbench.backends.ray_replicas import RaySettings, import_ray

    if options.ray is None:
        if options.replicas != 1 or options.gpus_per_replica is not None:
            raise SettingError("{replicas} and {gpus_per_replica} need {ray} local|auto|ray://HOST:PORT")
        return None
    settings = RaySettings(
        options.ray, options.replicas, options.gpus_per_replica, chunk_size=options.batch_size
    )
    settings.check()
    import_ray()  # before anything is loaded: one line saying what to install
    return settings


def create_backend(backend: str, model: str, options: BackendOptions, *, generates: bool = True) -> Backend:
    """The backend, in this process or as Ray replicas; ``generates`` False skips the torch check."""
    from functools import partial

    from longbench.backends import create_backend as create

    ray = ray_settings(options)
    if backend == "transformers" and generates and ray is None:
        from longbench.backends.hf import require_torch

        require_torch()  # fail before anything is written, not at the first sample
    built = engine_options(backend, model, options)
    if ray is None:
        return create(backend, **built)
    from longbench.backends.ray_replicas import RayReplicasBackend

    return RayReplicasBackend(partial(create, backend), built, ray)


# ---------------------------------------------------------------------------------------------- predict


def _check_v1_options(options: PredictOptions) -> None:
    v2 = options.v2_options
    if any((v2.cot, v2.no_context, v2.rag, v2.temperature is not None, v2.subset_given())):
        raise SettingError(
            "{cot}, {no_context}, {rag}, {temperature}, {difficulty}, {length}, {domain} and {ids} "
            "apply to {v2} only"
        )


def v2_subset(options: V2Options) -> V2Subset:
    """The v2 records ``predict`` selects."""
    from longbench.benchmarks.v2_run import V2Subset, read_ids

    domains = tuple(name.strip() for name in options.domain if name.strip()) if options.domain else None
    ids, ids_sha256 = read_ids(options.ids) if options.ids is not None else (None, None)
    return V2Subset(options.difficulty, options.length, domains, ids, ids_sha256)


def run_spec(options: PredictOptions) -> RunSpec:
    """The run half of the chosen benchmark (v2 in its mode, temperature and subset)."""
    from longbench.benchmarks import get_benchmark

    if not options.v2:
        _check_v1_options(options)
        return get_benchmark("e" if options.e else "v1").runs
    from longbench.benchmarks.v2_run import DEFAULT_TEMPERATURE
    from longbench.v2.prompts import V2Mode

    if options.e or options.tasks is not None or options.category:
        raise SettingError("{v2} takes no {e}, {tasks} or {category}")
    if options.top_k is not None:
        raise SettingError("{top_k} applies to LongBench v1; {v2} reads retrieved_context with {rag} N")
    v2 = options.v2_options
    temperature = DEFAULT_TEMPERATURE if v2.temperature is None else v2.temperature
    mode = V2Mode(cot=v2.cot, no_context=v2.no_context, rag=v2.rag)
    return replace(get_benchmark("v2").runs, mode=mode, temperature=temperature, subset=v2_subset(v2))


def default_pred_root(options: PredictOptions) -> Path:
    """Where predictions go: ``out``, else pred_v2, pred_e or pred."""
    if options.out is not None:
        return options.out
    return Path("pred_v2" if options.v2 else ("pred_e" if options.e else "pred"))


def _check_predict_numbers(options: PredictOptions) -> None:
    for setting in ("limit", "max_length", "top_k"):
        _positive(getattr(options, setting), setting)
    _positive(options.engine.batch_size, "batch_size")
    if options.thinking_budget < 0:
        raise SettingError("{thinking_budget} must be at least 0, got {value}", value=options.thinking_budget)


def predict(options: PredictOptions) -> PredictSummary:
    """Generate predictions into ``<out>/<model name>/``, resuming what earlier runs wrote."""
    from longbench.runner import predict as run_predictions
    from longbench.runner import run_name
    from longbench.sources import open_source

    _check_predict_numbers(options)
    spec = run_spec(options)
    source = open_source(options.data, top_k=options.top_k, verify=options.verify)
    shard = parse_shard(options.shard)
    model_name = options.model_name or run_name(options.model, source)
    tasks = spec.tasks(
        model_name, source, None if options.tasks is None else list(options.tasks), options.category
    )
    engine = options.engine
    if options.v2 and engine.chat_template == "auto":  # SPEC-v2: the tokenizer's template, not v1's formats
        engine = replace(engine, chat_template="tokenizer")
    backend = create_backend(options.backend, options.model, engine, generates=options.dump_prompts is None)
    try:
        return run_predictions(
            backend,
            tasks,
            source,
            default_pred_root(options),
            benchmark=spec,
            max_length=options.max_length,
            limit=options.limit,
            shard=shard,
            batch_size=engine.batch_size,
            dump_prompts=options.dump_prompts,
            model_name=model_name,
            seed=options.seed,
            thinking_budget=options.thinking_budget,
            allow_version_change=options.allow_version_change,
        )
    finally:
        backend.close()


# ---------------------------------------------------------------------------------------------- evaluate


def score_settings(options: EvalOptions | CompareOptions) -> ScoreSettings:
    from longbench.benchmarks.base import ScoreSettings

    tasks = None if options.tasks is None else tuple(name.strip() for name in options.tasks if name.strip())
    return ScoreSettings(
        corrected=options.corrected,
        compensated=options.compensated,
        tasks=tasks,
        workers=options.workers,
    )


def evaluate(options: EvalOptions) -> EvalReport:
    """Score prediction folders through the benchmark's score half and write the output set."""
    from longbench.benchmarks import get_benchmark
    from longbench.predictions import group_by_model
    from longbench.report_files import ReportOptions, extra_report_files
    from longbench.reports import TableOptions, seed_files, seed_tables, write_output_set
    from longbench.result_folder import check_output_location
    from longbench.seeds import seed_spread

    pred_dirs = [Path(folder) for folder in options.pred_dirs]
    settings = score_settings(options)
    report = ReportOptions(TableOptions(published=options.published, ci=options.ci), plots=options.plots)
    definition = get_benchmark(benchmark_name(options.v2, options.e))
    spec = definition.scores
    spec.check(settings, report.tables.published)
    out_dir = (
        options.out
        if options.out is not None
        else spec.default_out(list(group_by_model(pred_dirs)), settings)
    )
    check_output_location(out_dir)  # before scoring: a read-only or foreign folder fails at once
    results = spec.evaluate(pred_dirs, settings)
    spread = seed_spread(results, spec.quantities)
    across = seed_tables(spread)
    files = spec.output_files(results, out_dir, report.tables)
    files.update(seed_files(spread, across, out_dir))
    files.update(extra_report_files(spec, definition.title, results, out_dir, report, across))
    write_output_set(out_dir, files)
    tables = [*spec.tables(results, report.tables), *across]
    return EvalReport(results, tables, list(spec.notes(results, report.tables)), out_dir, sorted(files))


# ---------------------------------------------------------------------------------------------- compare


def compare(options: CompareOptions) -> CompareReport:
    """Paired comparison of two runs on the same samples; writes the comparison's output set."""
    from longbench.benchmarks import get_benchmark
    from longbench.compare_runs import compare_runs
    from longbench.reports import write_output_set
    from longbench.result_folder import check_output_location

    settings = score_settings(options)
    definition = get_benchmark(benchmark_name(options.v2, options.e))
    definition.scores.check(settings, published=False)
    comparison = compare_runs(definition.scores, [Path(folder) for folder in options.pred_dirs], settings)
    out_dir = options.out or Path(definition.metrics_root) / f"compare_{comparison.a}_vs_{comparison.b}"
    check_output_location(out_dir)
    files = comparison.files(out_dir)
    write_output_set(out_dir, files)
    return CompareReport(comparison, comparison.table(), list(comparison.notes()), out_dir, sorted(files))


# ---------------------------------------------------------------------------------------------- compress


def compress_settings(options: CompressOptions) -> CompressSettings:
    from longbench.compression.pipeline import CompressSettings

    _positive(options.chunk_size, "chunk_size")
    _positive(options.limit, "limit")
    if options.method == "dense" and not options.embedder:
        raise SettingError("{method} dense needs {embedder} MODEL (e.g. facebook/mcontriever)")
    if options.method == "summary" and not options.model:
        raise SettingError("{method} summary needs {model} M (and its {backend} options)")
    if options.v2 and (options.method == "summary" or options.data in ("hub", "sample")):
        raise SettingError("{v2} needs {method} bm25 or dense and {data} a LongBench v2 data file")
    return CompressSettings(
        method=options.method,
        chunk_size=options.chunk_size,
        bm25_tokens=options.bm25_tokens if options.method == "bm25" else "characters",
        embedder=options.embedder if options.method == "dense" else None,
        model=options.model if options.method == "summary" else None,
    )


def _compress_ranker(options: CompressOptions) -> Ranker:
    from longbench.compression.pipeline import bm25_ranker

    if options.method == "dense":
        from longbench.compression.dense import DenseRanker

        return DenseRanker(
            options.embedder, device=options.engine.device, batch_size=options.engine.batch_size
        ).order
    return bm25_ranker(options.bm25_tokens)


def _compress_tasks(options: CompressOptions) -> list[str]:
    from longbench.compression import DEFAULT_TASKS, SUMMARY_TASKS
    from longbench.tasks import select_tasks

    default = SUMMARY_TASKS if options.method == "summary" else DEFAULT_TASKS
    names = (
        list(default) if options.tasks is None else [name.strip() for name in options.tasks if name.strip()]
    )
    return [task.name for task in select_tasks(names, None, e=options.e)]


def _compress_v1(
    options: CompressOptions, settings: CompressSettings, out: Path, tasks: list[str]
) -> CompressSummary:
    from longbench.compression.pipeline import compress as run_compression

    common = {"e": options.e, "limit": options.limit}
    if options.method != "summary":
        summary = run_compression(
            options.data, out, tasks, settings, ranker=_compress_ranker(options), **common
        )
    else:
        from longbench.compression.summary import SegmentSummarizer

        backend = create_backend(options.backend, options.model or "", options.engine)
        try:
            summarizer = SegmentSummarizer(backend, options.chunk_size)
            summary = run_compression(options.data, out, tasks, settings, condenser=summarizer, **common)
        finally:
            backend.close()
    return CompressSummary(out, sum(summary.written.values()), sum(summary.skipped.values()))


def compress(
    options: CompressOptions, announce: Callable[[str], None] = lambda line: None
) -> CompressSummary:
    """Write a derived (compressed) data folder; ``announce`` hears one line saying what starts."""
    settings = compress_settings(options)
    out = options.out or Path("compressed") / (("v2-" if options.v2 else "") + settings.folder_name())
    if options.v2:
        from longbench.compression.v2 import compress_v2

        announce(f"compressing LongBench v2 into {out}: {settings.label()}")
        written, skipped = compress_v2(
            Path(options.data), out, settings, _compress_ranker(options), limit=options.limit
        )
        return CompressSummary(out, written, skipped)
    tasks = _compress_tasks(options)
    announce(f"compressing {len(tasks)} tasks into {out}: {settings.label()}")
    return _compress_v1(options, settings, out, tasks)
