"""One example rendered as the model sees it, for the Data page's "As the model sees it" view.

A long-lived ``data preview --serve`` child (``RenderJob``) has read the dataset and loaded the
tokenizer once, so each example clicked comes back in milliseconds. Each rendering is kept until
the dataset, its reading options, the model or the maximum length change (``forget``), which also
stops the child: it holds the old ones.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.token_job import Measuring, RenderJob, model_problem
from widgets.example_preview import ExamplePreview, RenderedExample


class ExampleRendering(QObject):
    """Renders the example the preview asks for, with the chat template of the model chosen."""

    # What the example shown holds that its data does not, in words (e.g. the chat template's own system
    # prompt, see backend.data.chat_tokens.template_system_prompt); "" when nothing, or nothing rendered yet.
    noticed = Signal(str)

    def __init__(self, home: Path, preview: ExamplePreview, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._preview = preview
        self._renders: dict[int, RenderedExample] = {}
        self._notices: dict[int, str] = {}
        self._job = RenderJob(home, self)
        self._job.noticed.connect(self._notices.__setitem__)
        self._job.rendered.connect(self._on_rendered)
        self._job.failed.connect(self._on_failed)

    def render(self, row: int, request: Measuring | None, model_name: str, *, settling: bool) -> None:
        """Show ``row`` rendered: at once if it was, else ask the child.

        ``request`` is what to render with (``None``: nothing can be, yet); while ``settling`` the
        maximum length is being changed, and the example is rendered once it is set.
        """
        self.noticed.emit(self._notices.get(row, ""))
        if row in self._renders:
            self._preview.show_rendered(row, self._renders[row])
            return
        if request is None:
            return
        problem = model_problem(request.model)
        if problem is not None:
            self._preview.set_rendered_placeholder("\n\n".join(t for t in problem if t))
            return
        if settling:
            self._preview.set_rendered_placeholder(f"Example {row + 1:,} is rendered once the maximum length is set…")
            return
        self._preview.set_rendered_placeholder(f"Rendering example {row + 1:,} with {model_name}'s chat template…")
        self._job.start(request, row)

    def forget(self) -> None:
        """Drop every rendering and stop the child that made them."""
        self._renders.clear()
        self._notices.clear()
        self.noticed.emit("")
        self._job.shutdown()

    def _on_rendered(self, row: int, rendered: RenderedExample) -> None:
        self._renders[row] = rendered
        if row == self._preview.current_example():
            self.noticed.emit(self._notices.get(row, ""))
        self._preview.show_rendered(row, rendered)

    def _on_failed(self, row: int, message: str) -> None:
        if row == self._preview.current_example():
            self._preview.set_rendered_placeholder(f"This example could not be rendered. {message}")
