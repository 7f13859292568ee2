"""Option checks: options validated against their model, one-line option errors, and whether a
re-run's option value is the setting a run recorded.

:func:`check_options` validates a command's options through one of the models of
:mod:`sam2elnet.options` (or a run configuration) and turns the first problem into one
``error:`` line naming the flag, the value and the allowed range (:func:`option_error`);
:func:`option_default` is where the CLI takes each default from. :func:`same_setting` and
:func:`setting_change` are the one rule and wording of ``elnet train --resume`` and of
``elnet cv`` into a folder holding a run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from sam2elnet.errors import UserError

PATH_OPTIONS = frozenset({"data", "weights", "init_model", "norm_stats"})
"""Options that name a file or folder (:func:`same_setting`: one setting however written)."""


def same_setting(
    key: str, old: Any, new: Any, digests: tuple[str | None, str | None] | None = None
) -> bool:
    """Whether a run's recorded option value ``old`` and a re-run's ``new`` are one setting:
    equal, or for :data:`PATH_OPTIONS` the same file or folder written another way (relative /
    absolute, ``~``; both resolved against the working directory). The one rule of
    ``elnet train --resume`` and of ``elnet cv`` into a folder holding a run.

    ``--weights`` at two paths is also one setting when the files hold the same bytes (the
    SAM2 file at ``/home/a/sam2.pt`` on one node, ``/scratch/b/sam2.pt`` on another):
    ``digests`` is the SHA-256 of ``old`` (as the run recorded it, or of the file when it is
    on this machine) and of ``new``
    (:func:`~sam2elnet.model.checkpoint_files.weights_digests`); None where unknown, and then
    they are not one setting (:func:`weights_hint` says what to do)."""
    if old == new:
        return True
    if not (isinstance(old, str) and isinstance(new, str) and key in PATH_OPTIONS):
        return False
    from pathlib import Path

    if Path(old).expanduser().resolve() == Path(new).expanduser().resolve():
        return True
    was, now = digests or (None, None)
    return key == "weights" and was is not None and was == now


def weights_hint(change: str, old: Any, new: Any, recorded: str | None) -> str:
    """A refused ``--weights`` change (``change``: ``--weights '/s/b.pt' (saved: '/h/a.pt')``)
    with what to do when it was refused only because the saved file ``old`` is not on this
    machine and its run recorded no SHA-256 of it (made before runs recorded one):
    ``--weights '/s/b.pt' (saved: '/h/a.pt', not on this machine, no fingerprint of it
    recorded: if /s/b.pt is the same file, link it there: ln -s /s/b.pt /h/a.pt)``; ``change``
    as it is otherwise (the files differ, or ``new`` is not on this machine either)."""
    from pathlib import Path

    if recorded or not (isinstance(old, str) and isinstance(new, str) and change.endswith(")")):
        return change
    if (
        "none" in (old, new)
        or Path(old).expanduser().exists()
        or not Path(new).expanduser().exists()
    ):
        return change
    return (
        f"{change[:-1]}, not on this machine, no fingerprint of it recorded: if {new} is the "
        f"same file, link it there: ln -s {Path(new).expanduser().resolve()} {old})"
    )


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
    import typing

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
    owner: type[BaseModel] = model
    for part in loc[:-1]:
        ann = owner.model_fields[part].annotation if part in owner.model_fields else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            owner = ann
    name = loc[-1] if loc else ""
    flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
    msg = str(e["msg"]).removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    allowed = _allowed(owner, name)
    if allowed.startswith("choose ") and e.get("type") == "literal_error":
        detail = allowed  # pydantic's "input should be 'a', 'b' or 'c'" says the same again
    else:
        detail = msg + (f"; {allowed}" if allowed and allowed not in msg else "")
    return UserError(f"invalid value for {flag}: {e.get('input')!r} ({detail})")
