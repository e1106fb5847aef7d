"""Run a generated project's CI/CD on this machine: each job's shell steps, in order.

GitHub Actions workflows and GitLab CI pipelines are read into one shape, :class:`Job`: its
shell commands, its environment, what it needs and when it runs. :class:`PipelineRun` then runs
the jobs of one workflow (or of one GitLab pipeline) in the order their `needs` give, in the
rendered project, with the environment the job declares, as a runner would: `bash -eo pipefail`
per step, `$GITHUB_OUTPUT`, `$GITHUB_ENV` and `$GITHUB_STEP_SUMMARY` as files, job outputs, and
job conditions such as `failure() && needs.canary.result != 'skipped'`.

What needs a remote is given by the test as fakes on `PATH` and in the contexts (`vars`,
`secrets`): the registry push, the cloud deploy, the GitHub and GitLab APIs. Everything else is
the real command. Of the `uses:` steps, checkout and setup-python are what the project folder and
its interpreter already are; upload-artifact checks that what it would upload exists.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .conftest import record_timing

# `make a b VAR=value`: the targets a command line runs (options and assignments are not).
MAKE_CALL = re.compile(r"(?:^|[;&|][ \t]*)make((?:[ \t]+[^\s;&|#]+)+)", flags=re.MULTILINE)
# The provisioning of GitLab's job images (this machine has the tools): not run here.
PROVISIONING = ("apt-get ", "apk add ")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Step:
    """One step of a job: a shell command, or a `uses:` action with its inputs."""

    name: str
    run: str | None = None
    uses: str | None = None
    with_: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    condition: str | None = None


@dataclass
class Job:
    """One job: its steps, its environment, the jobs it needs, and when it runs."""

    name: str
    steps: list[Step]
    env: dict[str, str] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    condition: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    artifacts: list[str] = field(default_factory=list)
    stage: str = ""
    rules: list[dict[str, Any]] = field(default_factory=list)  # GitLab's `rules:`
    environment: str | None = None  # the deployment environment the job is bound to


@dataclass
class Pipeline:
    """The jobs of one workflow file (GitHub) or of the pipeline file (GitLab)."""

    env: dict[str, str]
    jobs: dict[str, Job]
    rules: list[dict[str, Any]] = field(default_factory=list)  # GitLab's `workflow: rules:`

    def selected(self, variables: Mapping[str, str], changed: set[str]) -> dict[str, str]:
        """GitLab: the jobs a pipeline with `variables` runs, each with its `when` (the first
        matching rule's); none when the `workflow:` rules create no pipeline."""
        scope = {**self.env, **variables}
        if self.rules and _first_rule(self.rules, scope, changed) is None:
            return {}
        chosen = {}
        for job in self.jobs.values():
            rule = _first_rule(job.rules, {**scope, **job.env}, changed)
            if rule is not None and rule.get("when", "on_success") != "never":
                chosen[job.name] = rule.get("when", "on_success")
        return chosen


def make_targets(command: str) -> list[str]:
    """The Make targets `command` runs (``make lint test X=1`` -> ``["lint", "test"]``)."""
    targets = []
    for call in MAKE_CALL.finditer(command):
        targets += [w for w in shlex.split(call.group(1)) if "=" not in w and not w.startswith("-")]
    return targets


def github_pipeline(path: Path) -> Pipeline:
    """A GitHub Actions workflow file as a :class:`Pipeline`."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    jobs = {}
    for name, spec in document["jobs"].items():
        steps = [
            Step(
                name=step.get("name", step.get("uses", "")),
                run=step.get("run"),
                uses=step.get("uses"),
                with_={key: str(value) for key, value in step.get("with", {}).items()},
                env={key: str(value) for key, value in step.get("env", {}).items()},
                id=step.get("id"),
                condition=step.get("if"),
            )
            for step in spec["steps"]
        ]
        needs = spec.get("needs", [])
        jobs[name] = Job(
            name=name,
            steps=steps,
            env={key: str(value) for key, value in spec.get("env", {}).items()},
            needs=[needs] if isinstance(needs, str) else list(needs),
            condition=spec.get("if"),
            outputs=dict(spec.get("outputs", {})),
            artifacts=[s.with_["path"] for s in steps if (s.uses or "").startswith(UPLOAD)],
            environment=_environment_name(spec.get("environment")),
        )
    return Pipeline({k: str(v) for k, v in document.get("env", {}).items()}, jobs)


UPLOAD = "actions/upload-artifact@"
GITLAB_KEYWORDS = {"workflow", "variables", "stages", "default", "include", "image", "cache"}


def gitlab_pipeline(path: Path) -> Pipeline:
    """The jobs of a `.gitlab-ci.yml` (templates merged in through `extends`)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    stages = document.get("stages", [])

    def resolved(spec: dict[str, Any]) -> dict[str, Any]:
        parents = spec.get("extends", [])
        merged: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged.update(resolved(document[parent]))
        variables = {**merged.get("variables", {}), **spec.get("variables", {})}
        return {**merged, **spec, "variables": variables}

    jobs = {}
    for name, raw in document.items():
        if name in GITLAB_KEYWORDS or name.startswith("."):
            continue
        spec = resolved(raw)
        lines = [*spec.get("before_script", []), *spec["script"]]
        script = "\n".join(line for line in lines if not line.startswith(PROVISIONING))
        jobs[name] = Job(
            name=name,
            steps=[Step(name=name, run=script)],
            env={key: str(value) for key, value in spec["variables"].items()},
            needs=list(spec.get("needs", [])),
            artifacts=list(spec.get("artifacts", {}).get("paths", [])),
            stage=spec.get("stage", "test"),
            environment=_environment_name(spec.get("environment")),
            rules=list(spec.get("rules", [{}])),
        )
    order = {stage: index for index, stage in enumerate(stages)}
    ordered = dict(sorted(jobs.items(), key=lambda item: order.get(item[1].stage, len(order))))
    variables = {key: str(value) for key, value in document.get("variables", {}).items()}
    return Pipeline(variables, ordered, document.get("workflow", {}).get("rules", []))


@dataclass
class StepResult:
    """What one step did: its outcome, how long it took, and its output."""

    job: str
    name: str
    outcome: str  # success, failure or skipped
    seconds: float
    output: str


@dataclass
class RunResult:
    """The outcome of each job, each step's result, and each job's outputs."""

    jobs: dict[str, str] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def failures(self) -> str:
        """The failed steps with the end of their output (for an assertion message)."""
        return "\n".join(
            f"--- {s.job} / {s.name}\n{s.output[-4000:]}"
            for s in self.steps
            if s.outcome == "failure"
        )

    def output_of(self, job: str, command: str) -> str:
        """The output of the step of `job` whose command contains `command`."""
        return next(s.output for s in self.steps if s.job == job and command in s.name)


class Expressions:
    """GitHub's `${{ }}` expressions, as far as workflows we generate use them.

    Context paths (``vars.X``, ``needs.a.outputs.b``), string literals, ``==``, ``!=``, ``&&``,
    ``||`` and the status functions. Anything else fails loudly, so a workflow that needs more
    fails its test until this learns it.
    """

    TOKEN = re.compile(r"\s*(\|\||&&|==|!=|\(|\)|'[^']*'|[A-Za-z_][\w.-]*(?:\(\))?)")

    def __init__(self, contexts: Mapping[str, Any], status: str = "success") -> None:
        self.contexts = contexts
        self.status = status  # "success" or "failure": the state of the job so far

    def interpolate(self, text: str) -> str:
        """`text` with each `${{ expression }}` replaced by its value."""
        return EXPRESSION.sub(lambda match: self.text(self.evaluate(match.group(1))), text)

    def condition(self, text: str | None) -> bool:
        """An `if:` (with or without `${{ }}`); no condition means `success()`."""
        if text is None:
            return self.status == "success"
        found = EXPRESSION.fullmatch(text.strip())
        expression = found.group(1) if found else text
        if not re.search(r"\b(always|failure|success|cancelled)\(\)", expression):
            expression = f"success() && ({expression})"
        return bool(self.evaluate(expression))

    @staticmethod
    def text(value: object) -> str:
        if value is None or value is False:
            return "" if value is None else "false"
        return "true" if value is True else str(value)

    def evaluate(self, expression: str) -> object:
        tokens = [t for t in self.TOKEN.findall(expression) if t]
        if "".join(tokens) != re.sub(r"\s+", "", expression):
            raise ValueError(f"unsupported expression: {expression}")
        value, rest = self._or(tokens)
        if rest:
            raise ValueError(f"unsupported expression: {expression}")
        return value

    def _or(self, tokens: list[str]) -> tuple[object, list[str]]:
        left, tokens = self._and(tokens)
        while tokens[:1] == ["||"]:
            right, tokens = self._and(tokens[1:])
            left = left or right
        return left, tokens

    def _and(self, tokens: list[str]) -> tuple[object, list[str]]:
        left, tokens = self._compare(tokens)
        while tokens[:1] == ["&&"]:
            right, tokens = self._compare(tokens[1:])
            left = left and right
        return left, tokens

    def _compare(self, tokens: list[str]) -> tuple[object, list[str]]:
        left, tokens = self._value(tokens)
        if tokens[:1] in (["=="], ["!="]):
            right, rest = self._value(tokens[1:])
            same = self.text(left).lower() == self.text(right).lower()
            return (same if tokens[0] == "==" else not same), rest
        return left, tokens

    def _value(self, tokens: list[str]) -> tuple[object, list[str]]:
        token, rest = tokens[0], tokens[1:]
        if token == "(":  # noqa: S105 (a parenthesis, not a password)
            value, rest = self._or(rest)
            return value, rest[1:]
        if token.startswith("'"):
            return token[1:-1], rest
        functions = {
            "always()": True,
            "success()": self.status == "success",
            "failure()": self.status == "failure",
            "cancelled()": False,
        }
        if token in functions:
            return functions[token], rest
        value: Any = self.contexts
        for part in token.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value, rest


class PipelineRun:
    """Runs jobs of a :class:`Pipeline` in a project folder, with contexts and fakes.

    Args:
        folder: The project (the checkout).
        base_env: The environment of the runner (the user's, with fakes first on PATH).
        contexts: GitHub's `vars`, `secrets` and `github`; for GitLab, its predefined variables
            under `gitlab`, and under `gitlab_environments` the variables scoped to each
            environment.
        logs: Where each step's output is written.
        overrides: Set last in every job's environment: what stands in for a job's service
            containers (``POSTGRES_HOST=127.0.0.1``).
    """

    def __init__(
        self,
        folder: Path,
        base_env: Mapping[str, str],
        contexts: Mapping[str, Any],
        logs: Path,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.base_env = dict(base_env)
        self.contexts = dict(contexts)
        self.logs = logs
        self.overrides = dict(overrides or {})
        logs.mkdir(parents=True, exist_ok=True)

    def github(self, pipeline: Pipeline, only: list[str] | None = None) -> RunResult:
        """Run the workflow's jobs (or `only` these; the others count as done), each when its
        `if:` holds."""
        result = RunResult()
        given = {name: "success" for name in pipeline.jobs if only and name not in only}
        for job in self._ordered(pipeline.jobs, only):
            ancestors = self._ancestors(pipeline.jobs, job.name)
            results = {**given, **result.jobs}
            if any(results.get(name) == "failure" for name in ancestors):
                status = "failure"
            elif all(results.get(name) == "success" for name in job.needs):
                status = "success"
            else:
                status = "skipped"  # a needed job did not run: success() and failure() are false
            needs = {
                name: {
                    "result": results.get(name, "skipped"),
                    "outputs": result.outputs.get(name, {}),
                }
                for name in job.needs
            }
            expressions = Expressions({**self.contexts, "needs": needs}, status)
            if not expressions.condition(job.condition):
                result.jobs[job.name] = "skipped"
                continue
            env = {**self.base_env, "CI": "true", "GITHUB_ACTIONS": "true"}
            env.update(self._interpolated(pipeline.env, expressions, env))
            env.update(self._interpolated(job.env, expressions, env))
            env.update(self.overrides)
            outcome, outputs = self._github_steps(job, env, expressions, result)
            result.jobs[job.name] = outcome
            result.outputs[job.name] = outputs
        return result

    def gitlab(self, pipeline: Pipeline, selected: Mapping[str, str]) -> RunResult:
        """Run the `selected` jobs (name: `when`) in stage order; a manual job runs (its
        approval is given), an `on_failure` one only after a failure it waits for."""
        result = RunResult()
        for job in self._ordered(pipeline.jobs, list(selected)):
            # `needs` limits what a job waits for; without it, every job before it.
            upstream = job.needs or list(result.jobs)
            failed = any(result.jobs.get(name) == "failure" for name in upstream)
            if (selected[job.name] == "on_failure") != failed:
                result.jobs[job.name] = "skipped"
                continue
            env = {**self.base_env, "CI": "true", "GITLAB_CI": "true", **self.contexts["gitlab"]}
            # CI/CD variables scoped to an environment reach only the jobs bound to it.
            env.update(self.contexts["gitlab_environments"].get(job.environment, {}))
            for variables in (pipeline.env, job.env):
                env.update({key: _expand(value, env) for key, value in variables.items()})
            env.update(self.overrides)
            step = self._shell(job, job.steps[0], env)
            result.steps.append(step)
            outcome = step.outcome
            if outcome == "success":
                outcome = self._artifacts_exist(job, result)
            result.jobs[job.name] = outcome
        return result

    # --- internals

    @staticmethod
    def _ordered(jobs: Mapping[str, Job], only: list[str] | None) -> list[Job]:
        """Jobs in an order where each comes after what it needs (file order otherwise)."""
        chosen = [jobs[name] for name in (only or list(jobs))]
        done: list[Job] = []
        while len(done) < len(chosen):
            for job in chosen:
                if job not in done and all(
                    need in {d.name for d in done} or need not in {c.name for c in chosen}
                    for need in job.needs
                ):
                    done.append(job)
                    break
        return done

    @staticmethod
    def _ancestors(jobs: Mapping[str, Job], name: str) -> set[str]:
        found: set[str] = set()
        pending = list(jobs[name].needs)
        while pending:
            need = pending.pop()
            if need not in found:
                found.add(need)
                pending += jobs[need].needs
        return found

    @staticmethod
    def _interpolated(
        variables: Mapping[str, str], expressions: Expressions, env: Mapping[str, str]
    ) -> dict[str, str]:
        scope = {**expressions.contexts, "env": dict(env)}
        return {
            key: Expressions(scope, expressions.status).interpolate(v)
            for key, v in variables.items()
        }

    def _github_steps(
        self, job: Job, env: dict[str, str], expressions: Expressions, result: RunResult
    ) -> tuple[str, dict[str, str]]:
        files = {
            name: self.logs / f"{job.name}-{name.lower()}"
            for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY")
        }
        for path in files.values():
            path.write_text("", encoding="utf-8")
        env.update({name: str(path) for name, path in files.items()})
        steps: dict[str, dict[str, Any]] = {}
        status = "success"
        for step in job.steps:
            scope = {**expressions.contexts, "env": env, "steps": steps}
            now = Expressions(scope, status)
            if not now.condition(step.condition):
                result.steps.append(StepResult(job.name, step.name, "skipped", 0.0, ""))
                continue
            if step.uses:
                outcome = self._action(step, now)
                result.steps.append(StepResult(job.name, step.name, outcome, 0.0, step.uses))
            else:
                step_env = {**env, **self._interpolated(step.env, now, env)}
                if EXPRESSION.search(step.run or ""):
                    raise AssertionError(f"{job.name}/{step.name}: an expression inside run:")
                before = files["GITHUB_OUTPUT"].read_text(encoding="utf-8")
                done = self._shell(job, step, step_env)
                result.steps.append(done)
                outcome = done.outcome
                written = files["GITHUB_OUTPUT"].read_text(encoding="utf-8")[len(before) :]
                if step.id:
                    steps[step.id] = {"outputs": dict(_pairs(written)), "outcome": outcome}
                env.update(_pairs(files["GITHUB_ENV"].read_text(encoding="utf-8")))
            if outcome == "failure":
                status = "failure"
        scope = {**expressions.contexts, "env": env, "steps": steps}
        outputs = {key: Expressions(scope).interpolate(value) for key, value in job.outputs.items()}
        return status, outputs

    def _action(self, step: Step, expressions: Expressions) -> str:
        """What a `uses:` step stands for on this machine."""
        action = (step.uses or "").split("@", 1)[0]
        if action == "actions/checkout":
            return "success"  # the project folder is the checkout
        if action == "actions/setup-python":
            wanted = expressions.interpolate(step.with_["python-version"])
            pinned = (self.folder / ".python-version").read_text(encoding="utf-8").strip()
            return "success" if wanted == pinned else "failure"
        if action == "actions/upload-artifact":
            return "success" if (self.folder / step.with_["path"]).exists() else "failure"
        raise AssertionError(f"no stand-in for the action {step.uses}")

    def _shell(self, job: Job, step: Step, env: Mapping[str, str]) -> StepResult:
        log = self.logs / f"{job.name}-{len(list(self.logs.iterdir()))}.log"
        started = time.monotonic()
        with log.open("w", encoding="utf-8") as output:
            process = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step.run or ""],
                cwd=self.folder,
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
                timeout=1800,
            )
        seconds = time.monotonic() - started
        record_timing(seconds, self.folder, (f"[{job.name}]", (step.run or step.name).strip()))
        outcome = "success" if process.returncode == 0 else "failure"
        text = log.read_text(encoding="utf-8")
        return StepResult(job.name, step.run or step.name, outcome, seconds, text)

    def _artifacts_exist(self, job: Job, result: RunResult) -> str:
        missing = [path for path in job.artifacts if not (self.folder / path).exists()]
        if missing:
            result.steps.append(StepResult(job.name, "artifacts", "failure", 0.0, str(missing)))
            return "failure"
        return "success"


# Operators, parentheses, "strings", /regular expressions/, $VARIABLES and null.
GITLAB_TOKEN = re.compile(
    r"""\s*(\|\||&&|==|!=|=~|!~|\(|\)|"[^"]*"|/(?:[^/\\]|\\.)*/|\$\w+|null)"""
)


def _first_rule(
    rules: list[dict[str, Any]], variables: Mapping[str, str], changed: set[str]
) -> dict[str, Any] | None:
    """The first of `rules` whose `if:` holds and whose `changes:` match (None: no rule does)."""
    for rule in rules:
        if "if" in rule and not _gitlab_condition(rule["if"], variables):
            continue
        patterns = rule.get("changes", [])
        if patterns and not any(fnmatch.fnmatch(f, p) for f in changed for p in patterns):
            continue
        return rule
    return None


def _gitlab_condition(expression: str, variables: Mapping[str, str]) -> bool:
    """A GitLab `rules: if:` expression: variables, strings, null, comparisons, regex matches,
    `&&`, `||` and parentheses (what the generated pipelines use)."""
    tokens = [token for token in GITLAB_TOKEN.findall(expression) if token]
    if "".join(tokens) != re.sub(r"\s+", "", expression):
        raise ValueError(f"unsupported rule: {expression}")

    def value(position: int) -> tuple[object, int]:
        token = tokens[position]
        if token == "(":  # noqa: S105 (a parenthesis, not a password)
            found, position = either(position + 1)
            return found, position + 1
        if token.startswith("$"):
            return variables.get(token[1:]) or None, position + 1
        if token == "null":  # noqa: S105 (GitLab's null)
            return None, position + 1
        return token[1:-1], position + 1

    def compare(position: int) -> tuple[object, int]:
        left, position = value(position)
        if position < len(tokens) and tokens[position] in {"==", "!=", "=~", "!~"}:
            operator = tokens[position]
            right, position = value(position + 1)
            if operator in {"==", "!="}:
                return (left == right) == (operator == "=="), position
            matched = left is not None and re.search(str(right), str(left)) is not None
            return matched == (operator == "=~"), position
        return bool(left), position

    def both(position: int) -> tuple[object, int]:
        left, position = compare(position)
        while position < len(tokens) and tokens[position] == "&&":
            right, position = compare(position + 1)
            left = bool(left) and bool(right)
        return left, position

    def either(position: int) -> tuple[object, int]:
        left, position = both(position)
        while position < len(tokens) and tokens[position] == "||":
            right, position = both(position + 1)
            left = bool(left) or bool(right)
        return left, position

    return bool(either(0)[0])


def _environment_name(environment: str | dict[str, Any] | None) -> str | None:
    """The name of a job's `environment:` (a string, or a mapping with `name`)."""
    if isinstance(environment, dict):
        return str(environment["name"])
    return environment


def _expand(value: str, env: Mapping[str, str]) -> str:
    """GitLab's expansion of `$NAME` and `${NAME}` in a variable's value (unset: empty)."""
    return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda match: env.get(match.group(1), ""), value)


def _pairs(text: str) -> dict[str, str]:
    """`name=value` lines (the `$GITHUB_OUTPUT` and `$GITHUB_ENV` format, single-line values)."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
