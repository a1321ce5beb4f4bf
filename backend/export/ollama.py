"""An Ollama ``Modelfile`` whose TEMPLATE reproduces the model's own chat template.

Ollama runs Go templates, not Jinja, and a model imported without TEMPLATE and stop
parameters generates past the end of its turn. The turn format is read off the Jinja
template by rendering conversations with marker strings: what stands before and after
each role's content, what opens the assistant's reply, whether a system message is its
own block or is folded into the first user turn (Gemma). The format is then rendered
back in Python for several conversations and must reproduce the Jinja output exactly
before a TEMPLATE is written from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARK = {"system": "\u2063S\u2063", "user": "\u2063U\u2063", "user2": "\u2063V\u2063", "assistant": "\u2063A\u2063"}


@dataclass(frozen=True)
class TurnFormat:
    """Literal text around each role's content, as the chat template writes it."""

    start: str
    prefix: dict[str, str]
    suffix: dict[str, str]
    generation: str
    system_folded: bool
    """True when the system text opens the first user turn instead of having its own block."""
    default_system: str | None = None
    """The system prompt the template writes when a conversation has none."""

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        """What Ollama produces from the Go template and Modelfile written from this format (checked against Jinja)."""
        if self.default_system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.default_system}, *messages]
        out, previous = [self.start], ""
        for message in messages:
            role = message["role"]
            skip_prefix = self.system_folded and role == "user" and previous == "system"
            out += ["" if skip_prefix else self.prefix[role], message["content"], self.suffix[role]]
            previous = role
        if add_generation_prompt and messages[-1]["role"] != "assistant":
            out.append(self.generation)
        return "".join(out)

    def go_template(self) -> str:
        """The same logic as ``render``, in Ollama's Go template language (one line: no trimming surprises)."""
        user_prefix = (
            f'{{{{ if ne $prev "system" }}}}{self.prefix["user"]}{{{{ end }}}}'
            if self.system_folded
            else self.prefix["user"]
        )
        return (
            f'{self.start}{{{{ $prev := "" }}}}{{{{ range $i, $_ := .Messages }}}}'
            "{{ $last := eq (len (slice $.Messages $i)) 1 }}"
            f'{{{{ if eq .Role "system" }}}}{self.prefix["system"]}{{{{ .Content }}}}{self.suffix["system"]}'
            f'{{{{ else if eq .Role "user" }}}}{user_prefix}{{{{ .Content }}}}{self.suffix["user"]}'
            f'{{{{ else if eq .Role "assistant" }}}}{self.prefix["assistant"]}'
            f"{{{{ .Content }}}}{self.suffix['assistant']}"
            f'{{{{ end }}}}{{{{ if and $last (ne .Role "assistant") }}}}{self.generation}{{{{ end }}}}'
            "{{ $prev = .Role }}{{ end }}"
        )


def turn_format(tokenizer: Any, runtime_adds_bos: bool) -> TurnFormat | None:
    """Read the turn format off the tokenizer's chat template; None when it cannot be expressed exactly."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    bos = tokenizer.bos_token or ""
    # A BOS the runtime adds must leave the template; otherwise prefer it inside the turn text.
    for strip in (bos,) if runtime_adds_bos else ("", bos):
        try:
            fmt = _derive(tokenizer, strip, runtime_adds_bos)
        except (ValueError, KeyError, IndexError):
            continue
        if fmt is not None and _reproduces(fmt, tokenizer, runtime_adds_bos):
            return fmt
    return None


def stop_words(fmt: TurnFormat, tokenizer: Any) -> list[str]:
    """Special tokens that end an assistant turn, plus EOS."""
    ending = fmt.suffix["assistant"]
    words = [token for token in tokenizer.all_special_tokens if token and token in ending]
    if tokenizer.eos_token:
        words.append(tokenizer.eos_token)
    return list(dict.fromkeys(words))


def modelfile_for(
    tokenizer_dir: Path, source: str, system: str | None, warnings: list[str], adapter: str | None = None
) -> str:
    """The Modelfile for a GGUF (``source``, FROM's value) served with ``tokenizer_dir``'s chat template.

    Appends to ``warnings`` when the template cannot be written as an Ollama TEMPLATE.
    """
    from transformers import AutoTokenizer

    from backend.export.gguf.convert import adds_bos_eos

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    fmt = turn_format(tokenizer, runtime_adds_bos=adds_bos_eos(tokenizer)[0])
    if fmt is None:
        warnings.append(
            "The chat template could not be turned into an Ollama TEMPLATE exactly; the Modelfile has none, so "
            "write one by hand before chatting with this model in Ollama."
        )
        stops = [tokenizer.eos_token] if tokenizer.eos_token else []
    else:
        stops = stop_words(fmt, tokenizer)
    return modelfile(source, fmt, stops, system, adapter)


def modelfile(
    source: str, fmt: TurnFormat | None, stops: list[str], system: str | None, adapter: str | None = None
) -> str:
    """The Modelfile text: FROM (and ADAPTER), TEMPLATE, one PARAMETER stop per stop word, SYSTEM when given
    or built in."""
    system = system or (fmt.default_system if fmt is not None else None)
    lines = [f"FROM {source}"]
    if adapter is not None:
        lines.append(f"ADAPTER {adapter}")
    if fmt is not None:
        lines.append(f'TEMPLATE """{fmt.go_template()}"""')
    lines += [f'PARAMETER stop "{_quote(word)}"' for word in stops]
    if system:
        lines.append(f'SYSTEM """{system}"""')
    return "\n".join(lines) + "\n"


def _render(tokenizer: Any, messages: list[dict[str, str]], generation: bool, strip: str) -> str:
    text: str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
    return text[len(strip) :] if strip and text.startswith(strip) else text


def _derive(tokenizer: Any, bos: str, runtime_adds_bos: bool) -> TurnFormat | None:
    """The format, with ``bos`` (when the template starts with it) taken out of the turn text."""
    u, v, a, s = (MARK[k] for k in ("user", "user2", "assistant", "system"))
    user_only = [{"role": "user", "content": u}]
    plain = tokenizer.apply_chat_template(user_only, tokenize=False)
    strip = bos if bos and plain.startswith(bos) else ""
    start = "" if runtime_adds_bos else strip
    one = _render(tokenizer, user_only, False, strip)
    system = _render(tokenizer, [{"role": "system", "content": s}, *user_only], False, strip)
    before, rest = system[: system.index(s)], system[system.index(s) + len(s) :]
    default = one[len(before) : len(one) - len(rest)] if one.startswith(before) and one.endswith(rest) else None
    if default:
        # The template adds a system prompt of its own: derive the turns from a conversation that has one.
        three = _render(tokenizer, [{"role": "system", "content": s}, *_chat(u, a, v)], False, strip)
        user_suffix = three[three.index(v) + len(v) :]
        after_system = three[three.index(s) + len(s) : three.index(u)]
        if not after_system.startswith(user_suffix):
            return None
        user_prefix = after_system[len(user_suffix) :]
    else:
        three = _render(tokenizer, _chat(u, a, v), False, strip)
        user_prefix = three[: three.index(u)]
        user_suffix = three[three.index(v) + len(v) :]
    between_ua = three[three.index(u) + len(u) : three.index(a)]
    between_av = three[three.index(a) + len(a) : three.index(v)]
    if not between_ua.startswith(user_suffix) or not between_av.endswith(user_prefix):
        return None
    prefix = {"user": user_prefix, "assistant": between_ua[len(user_suffix) :], "system": before}
    suffix = {"user": user_suffix, "assistant": between_av[: len(between_av) - len(user_prefix)]}
    after = rest[: rest.index(u)]
    folded = not user_prefix or not after.endswith(user_prefix)
    suffix["system"] = after if folded else after[: len(after) - len(user_prefix)]
    with_prompt = _render(tokenizer, user_only, True, strip)
    if not with_prompt.startswith(one):
        return None
    return TurnFormat(start, prefix, suffix, with_prompt[len(one) :], folded, default or None)


def _reproduces(fmt: TurnFormat, tokenizer: Any, runtime_adds_bos: bool) -> bool:
    bos = tokenizer.bos_token or ""
    conversations = [
        [{"role": "user", "content": "hi"}],
        _chat("Tell me a joke.", "Why did the chicken cross the road?", "Why?"),
        [{"role": "system", "content": "Be brief."}, *_chat("Hello", "Hi!", "Bye")],
    ]
    for messages in conversations:
        for generation in (False, True):
            expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
            if runtime_adds_bos and bos and expected.startswith(bos):
                expected = expected[len(bos) :]
            if fmt.render(messages, generation) != expected:
                return False
    return True


def _chat(user: str, assistant: str, user2: str) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": user},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": user2},
    ]


def _quote(word: str) -> str:
    return word.replace("\\", "\\\\").replace('"', '\\"')
