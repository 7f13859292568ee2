"""Option checks: options validated against their model, one-line option errors, and whether a
re-run's option value is the setting a run recorded.

:func:`check_options` validates a command's options through one of the models of
:mod:`sam2elnet.options` (or a run configuration) and turns the first problem into one
``error:`` line naming the flag, the value and the allowed range (:func:`option_error`);
:func:`option_default` is where the CLI takes each default from. :func:`same_setting` and
:func:`setting_change` are the one rule and wording of ``elnet train --resume``, of
``elnet cv`` and of ``elnet experiment`` into a folder holding a run; :class:`WeightsFiles` is
that rule and wording for the ``--weights`` file.
"""

from __future__ import annotations

import contextlib
import contextvars
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from sam2elnet.errors import UserError

PATH_OPTIONS = frozenset({"data", "weights", "init_model", "norm_stats"})
"""Options that name a file or folder (:func:`same_setting`: one setting however written)."""


def same_setting(key: str, old: Any, new: Any, weights: WeightsFiles | None = None) -> bool:
    """Whether a run's recorded option value ``old`` and a re-run's ``new`` are one setting:
    equal, or for :data:`PATH_OPTIONS` the same file or folder written another way (relative /
    absolute, ``~``; both resolved against the working directory). The one rule of
    ``elnet train --resume``, ``elnet cv`` and ``elnet experiment`` into a folder holding a run.

    ``--weights`` (``key`` ``"weights"``) is compared as :attr:`WeightsFiles.same` says:
    ``weights`` is the comparison with what the run recorded of its file
    (:func:`~sam2elnet.model.checkpoint_files.weights_files`); None: the paths as given
    (:meth:`WeightsFiles.as_given`)."""
    if key == "weights":
        return (weights or WeightsFiles.as_given(old, new)).same
    if old == new:
        return True
    if not (isinstance(old, str) and isinstance(new, str) and key in PATH_OPTIONS):
        return False
    return Path(old).expanduser().resolve() == Path(new).expanduser().resolve()


def weights_path(weights: Any) -> Path | None:
    """The absolute path (``~`` expanded, links followed) of the SAM2 weights ``weights`` names,
    resolved against the working directory; None for no weights (None / ``"none"``) or a value
    that is no path. It need not exist."""
    if not isinstance(weights, (str, Path)) or str(weights) in ("", "none"):
        return None
    return Path(weights).expanduser().resolve()


@dataclass(frozen=True)
class WeightsFiles:
    """A run's recorded ``--weights`` and a re-run's, as :func:`same_setting` compares them
    (:attr:`same`) and a refusal names them (:meth:`change`); made by
    :func:`~sam2elnet.model.checkpoint_files.weights_files` (or :meth:`as_given`).

    ``saved`` / ``given``: the option values (text; None: the default, ``"none"``: random init).
    ``saved_path`` / ``given_path``: the absolute files (None for None / ``"none"``); the saved
    one as the run recorded it (``weights_path``), or for an older record that holds only the
    text, that text resolved against the working directory. ``saved_sha256`` /
    ``given_sha256``: the files' SHA-256 (None where unknown); the saved one as the run recorded
    it (``recorded``: True) or read here. ``saved_found``: the run recorded the saved file's path
    and that file is on this machine, with the recorded digest where one is recorded (checked by
    :func:`~sam2elnet.model.checkpoint_files.weights_files` only where a refusal names it: the
    given file not on this machine). ``shown``: the option values a refusal names where
    ``saved`` / ``given`` are what a default (no ``--weights``) stood for, the cached official
    checkpoint (``"none"``: none was cached); None: ``saved`` / ``given`` themselves."""

    saved: Any
    given: Any
    saved_path: Path | None = None
    given_path: Path | None = None
    saved_sha256: str | None = None
    given_sha256: str | None = None
    recorded: bool = False
    saved_found: bool = False
    shown: tuple[Any, Any] | None = None

    @classmethod
    def as_given(cls, saved: Any, given: Any) -> WeightsFiles:
        """The comparison without a record and without reading a file: the paths as given,
        resolved here (:func:`weights_path`). With what the run recorded, and the digests that
        decide read: :func:`~sam2elnet.model.checkpoint_files.weights_files`."""
        return cls(saved, given, weights_path(saved), weights_path(given))

    @property
    def same(self) -> bool:
        """The rule: with both digests known, they decide (the same bytes at another path are
        the same setting, other bytes at the same path or text are not); else the files' paths
        (no file on one side: the values)."""
        if self.saved_path is None or self.given_path is None:
            return self.saved == self.given
        if self.saved_sha256 and self.given_sha256:
            return self.saved_sha256 == self.given_sha256
        return self.saved_path == self.given_path

    def change(self, said: Callable[[Any], str] = repr) -> str:
        """The refused change as a refusal names it, with both files and what to do: ``--weights
        'sam2.pt' (saved: 'sam2.pt'; /b/sam2.pt holds other bytes than /a/sam2.pt, the file
        the run was made with: give --weights /a/sam2.pt)``; for a saved file not on this
        machine that the run recorded no digest of, the link that makes it fit, ``... (saved:
        '/h/a.pt', not on this machine, no fingerprint of it recorded: if /s/b.pt is the same
        file, link it there: ln -s /s/b.pt /h/a.pt)`` (paths absolute; ``said``: how a value is
        written, default ``repr``); for a given file not on this machine, the recorded one when it
        is (:attr:`saved_found`), ``... (saved: 'sam2.pt'; /b/sam2.pt is not on this machine; the
        run was made with /a/sam2.pt: give --weights /a/sam2.pt)``."""
        saved, given = self.shown or (self.saved, self.given)
        head = f"--weights {said(given)} (saved: {said(saved)}"
        old, new = self.saved_path, self.given_path
        cached = self.shown is not None
        if cached and saved is None:  # the run's default: the file it found in the cache
            head += f", the cached SAM2 weights {old}" if old else ", no SAM2 weights cached then"
        if old is None or new is None:
            if cached and given is None and new is not None:
                return (
                    f"{head}; the cache now holds {new}: give --weights none to go on as started)"
                )
            if cached and given is None and old is not None:
                return (
                    f"{head}; none cached now: put that file back, or give --weights a copy of it)"
                )
            return head + ")"
        here = old.exists()
        if self.saved_sha256 and self.given_sha256:
            if old == new:
                return (
                    f"{head}; {new} holds other bytes than when the run recorded it: put back "
                    "the file the run was made with)"
                )
            give = f"give --weights {old}" if here else "give --weights a copy of that file"
            where = "" if here else " (not on this machine)"
            return (
                f"{head}; {new} holds other bytes than {old}, the file the run was made "
                f"with{where}: {give})"
            )
        if not new.exists():
            if self.saved_found and old != new:
                return (
                    f"{head}; {new} is not on this machine; the run was made with {old}: give "
                    f"--weights {old})"
                )
            return f"{head}; {new} is not on this machine)"
        if not here and not self.recorded:
            return (
                f"{head}, not on this machine, no fingerprint of it recorded: if {new} is the "
                f"same file, link it there: ln -s {new} {old})"
            )
        return head + ")"


AUTO_WHEN_NONE = ("epochs", "trunk_scale", "batch_size")
"""Options whose None means ``auto`` (chosen by the run): named so in a refusal."""


def setting_change(key: str, new: Any, old: Any, flag: str | None = None) -> str:
    """A changed option as a resume refusal names it: ``--epochs 5 (saved: 10)``, ``--epochs 10
    (saved: auto)`` (``flag``: default ``--`` + ``key`` with dashes)."""

    def said(v: Any) -> str:
        return "auto" if v is None and key in AUTO_WHEN_NONE else repr(v)

    return f"{flag or '--' + key.replace('_', '-')} {said(new)} (saved: {said(old)})"


def option_change(key: str, new: Any, old: Any) -> str:
    """One changed training option in a refusal's words (``elnet cv`` into a folder holding a run
    or a fold): ``--epochs 10 (saved: auto)``, ``--no-quality (saved: --quality)``."""
    if key == "fit_quality":  # --quality/--no-quality: a switch, not a value
        return (
            "--no-quality (saved: --quality)" if new is False else "--quality (saved: --no-quality)"
        )
    return setting_change(key, new, old)


_COMMAND_LINE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sam2elnet_command_line", default=False
)


@contextlib.contextmanager
def command_line_names() -> Iterator[None]:
    """Inside the block :func:`api_option` names the command line's flag alone
    (``--new-objects``, ``--device cpu``): ``elnet``'s entry point runs every command in it, so
    a CLI user reads no Python argument (``device='cpu'``). The previous spelling after it."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def api_option(name: str, flag: str | None = None) -> str:
    """How a message of the Python API names an option: the argument and the command line's
    flag, ``new_objects (--new-objects)`` (``flag``: default ``--`` + ``name`` with dashes), so
    a library user and a CLI user both recognise it; the flag alone inside
    :func:`command_line_names` (an ``elnet`` command)."""
    shown = flag or "--" + name.replace("_", "-")
    return shown if _COMMAND_LINE.get() else f"{name} ({shown})"


def api_flags(model: type[BaseModel]) -> dict[str, str]:
    """``flags`` for :func:`check_options` called by the Python API: each field of ``model``
    named as :func:`api_option` says (``invalid value for tta (--tta): 99 (...)``)."""
    return {name: api_option(name) for name in model.model_fields}


def option_default(model: type[BaseModel], name: str) -> Any:
    """The declared default of an option (the CLI's default comes from here).

    Args:
        model: One of the options models of this module.
        name: The field name.

    Returns:
        The field's default.
    """
    return model.model_fields[name].default


def _allowed(model: type[BaseModel], name: str) -> str:
    """'allowed: 0 <= x <= 7' from the field's constraints (or the choices of a Literal)."""
    f = model.model_fields.get(name)
    if f is None:
        return ""
    lo = hi = None
    for m in f.metadata:
        for attr, sign in (("ge", "<="), ("gt", "<")):
            if getattr(m, attr, None) is not None:
                lo = f"{getattr(m, attr):g} {sign} "
        for attr, sign in (("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                hi = f" {sign} {getattr(m, attr):g}"
    if lo or hi:
        return f"allowed: {lo or ''}x{hi or ''}"
    args = [a for a in typing.get_args(f.annotation) if a is not type(None)]
    lits = [v for a in args if typing.get_origin(a) is Literal for v in typing.get_args(a)]
    if not lits and typing.get_origin(f.annotation) is Literal:
        lits = list(typing.get_args(f.annotation))
    if lits:
        return "choose " + " | ".join(str(v) for v in lits)
    return ""


def check_options(
    model: type[BaseModel], /, flags: dict[str, str] | None = None, **values: Any
) -> Any:
    """Validate command options against ``model``; return the validated model.

    Args:
        model: one of the option models above (positional, so an option may be called
            ``model``, as ``elnet serve --model`` is).
        flags: option name -> flag shown in messages (default ``--name-with-dashes``).
        **values: the options as given (None for "not given" keeps the declared default).

    Returns:
        The validated ``model`` instance (defaults filled in, values normalised).

    Raises:
        UserError: ``invalid value for --tta: 99 (input should be less than or equal to 7;
            allowed: 0 <= x <= 7)`` for the first bad option.
    """
    given = {k: v for k, v in values.items() if v is not None}
    try:
        return model.model_validate(given)
    except ValidationError as err:
        raise option_error(model, err, flags) from None


def option_error(
    model: type[BaseModel], err: ValidationError, flags: dict[str, str] | None = None
) -> UserError:
    """A one-line error for the first problem of a validation error.

    Names the command-line flag, the value given and the allowed range. Nested fields
    (``quality.tta``) are looked up in the nested model.

    Args:
        model: The model that was validated.
        err: Its ``pydantic.ValidationError``.
        flags: Field name -> flag shown in messages (default ``--name-with-dashes``).

    Returns:
        The :class:`~sam2elnet.errors.UserError` to raise, e.g. ``invalid value for --tta: 99
        (input should be less than or equal to 7; allowed: 0 <= x <= 7)``.
    """
    e = err.errors()[0]
    loc = [str(x) for x in e["loc"] if not isinstance(x, int)]  # no item index of a list option
    if not loc:  # a rule across options (a model validator): its message names the flags
        return UserError(str(e["msg"]).removeprefix("Value error, "))
    # the field: the last part of loc that names one (a nested model's field under its
    # model's); a part after it is a union member's tag (``literal['micro','tiny',...]`` of a
    # ``ModelSize | Literal["auto"]`` option), no option name
    owner: type[BaseModel] = model
    where, name = model, loc[-1]
    for part in loc:
        if part not in owner.model_fields:
            break
        where, name = owner, part
        ann = owner.model_fields[part].annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            break
        owner = ann
    owner = where
    flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
    msg = str(e["msg"]).removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    allowed = _allowed(owner, name)
    if allowed.startswith("choose ") and e.get("type") == "literal_error":
        detail = allowed  # pydantic's "input should be 'a', 'b' or 'c'" says the same again
    else:
        detail = msg + (f"; {allowed}" if allowed and allowed not in msg else "")
    return UserError(f"invalid value for {flag}: {e.get('input')!r} ({detail})")
