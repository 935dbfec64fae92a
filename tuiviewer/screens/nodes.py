"""The node manager: the PACS this workstation talks to (nodes.toml); add, edit, delete, C-ECHO."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, Header, Input, Label, Select, Static

from tuiviewer.config.nodes import Node, TlsSettings, node_from_mapping
from tuiviewer.exceptions import TuiviewerError
from tuiviewer.messages import EchoAnswered, echo_node
from tuiviewer.net.trace import AssociationTrace
from tuiviewer.screens.base import workstation
from tuiviewer.screens.dialogs.common import ConfirmDialog, FormDialog, ValueDialog
from tuiviewer.widgets.key_footer import KeyFooter

FIELDS = (
    ("name", "Name"),
    ("ae_title", "Called AE title"),
    ("host", "Host"),
    ("port", "Port"),
    ("calling_aet", "Our AE title"),
    ("move_port", "Our port for C-MOVE"),
    ("ca_file", "TLS: CA file"),
    ("cert_file", "TLS: client certificate"),
    ("key_file", "TLS: client key"),
)


class TickBox(Checkbox):
    """A checkbox that is blank when off (Textual's shows the same X either way, only its
    colour changes, which reads as "on" in many terminal themes)."""

    def render(self) -> Content:
        self.BUTTON_INNER = "X" if self.value else " "
        return super().render()


class NodeDialog(FormDialog[Node]):
    """Create or edit a node; the values are checked as nodes.toml would check them."""

    def __init__(self, node: Node | None, taken: set[str]) -> None:
        super().__init__()
        self.node = node
        self.taken = taken

    def _initial(self, key: str) -> str:
        node = self.node
        if node is None:
            return {"port": "104", "calling_aet": "TUIVIEWER", "move_port": "11113"}.get(key, "")
        if key in ("ca_file", "cert_file", "key_file"):
            value = getattr(node.tls, key, None) if node.tls else None
            return str(value) if value else ""
        return str(getattr(node, key))

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Edit node" if self.node else "Add a node", classes="dialog-title")
            with Grid(id="node-form"):
                for key, label in FIELDS:
                    yield Label(label)
                    yield Input(self._initial(key), id=f"f-{key}")
                yield Label("Retrieve with")
                yield Select(
                    [("C-GET", "get"), ("C-MOVE (to our port)", "move")],
                    value=self.node.retrieve if self.node else "get",
                    allow_blank=False,
                    id="f-retrieve",
                    compact=True,
                )
                yield Label("TLS")
                yield TickBox(
                    "use TLS, verify the server",
                    self.node is not None and self.node.tls is not None,
                    id="f-tls",
                    compact=True,
                )
            yield Label("", id="node-error", classes="error")
            yield Label("Enter saves · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#f-name", Input).focus()

    @on(Input.Submitted)
    def _submit(self) -> None:
        values = {key: self.query_one(f"#f-{key}", Input).value.strip() for key, _ in FIELDS}
        name = values.pop("name")
        error = self.query_one("#node-error", Label)
        if not name:
            error.update("A node needs a name.")
            return
        if name in self.taken and (self.node is None or name != self.node.name):
            error.update(f"A node named {name!r} exists already.")
            return
        table: dict[str, Any] = {
            "ae_title": values["ae_title"],
            "host": values["host"],
            "calling_aet": values["calling_aet"],
            "retrieve": self.query_one("#f-retrieve", Select).value,
        }
        for key in ("port", "move_port"):
            try:
                table[key] = int(values[key])
            except ValueError:
                error.update(
                    f"{key.replace('_', ' ').capitalize()} must be a number, not {values[key]!r}."
                )
                return
        if self.query_one("#f-tls", Checkbox).value:
            table["tls"] = {
                key: values[key] for key in ("ca_file", "cert_file", "key_file") if values[key]
            }
        try:
            node = node_from_mapping(name, table, Path.cwd())
        except TuiviewerError as exc:
            error.update(exc.message)
            return
        if self.node is not None:
            # Keep what the form does not show (timeouts, TLS details).
            node = replace(
                node,
                connect_timeout=self.node.connect_timeout,
                move_bind=self.node.move_bind,
                accept_deflated=self.node.accept_deflated,
                acse_timeout=self.node.acse_timeout,
                dimse_timeout=self.node.dimse_timeout,
                network_timeout=self.node.network_timeout,
                tls=node.tls
                if node.tls is None or self.node.tls is None
                else TlsSettings(
                    node.tls.ca_file,
                    node.tls.cert_file,
                    node.tls.key_file,
                    self.node.tls.verify,
                    self.node.tls.server_hostname,
                ),
            )
        self.dismiss(node)


class NodesScreen(Screen[None]):
    """Configured nodes with a C-ECHO test column."""

    CSS_PATH = "nodes.tcss"
    # The same keys as on the PACS query: e edits the node, t tests it (C-ECHO), T its trace.
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("e", "edit", "Edit"),
        Binding("delete", "delete", "Delete"),
        Binding("t", "test", "C-ECHO"),
        Binding("T", "trace", "Trace", show=False),
        # priority: the table would take Enter for itself (and hide it from the footer).
        Binding("enter", "use", "Query it", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.echo_results: dict[str, Text] = {}
        self.traces: dict[str, AssociationTrace] = {}
        """The association trace of each node's last C-ECHO (no PHI)."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="nodes-file")
        yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "PACS nodes"
        table = self.query_one(DataTable)
        for key, label in (
            ("name", "Name"),
            ("address", "AE@host:port"),
            ("ours", "Our AE"),
            ("retrieve", "Retrieve"),
            ("tls", "TLS"),
            ("echo", "C-ECHO"),
        ):
            table.add_column(label, key=key)
        self.refresh_rows()
        table.focus()

    def nodes(self) -> dict[str, Node]:
        return workstation(self).nodes

    def refresh_rows(self, keep: str | None = None) -> None:
        """Lay the rows out again; the cursor stays on node ``keep`` (default: the one under
        it), so that Delete and Edit act on the node the reader was on."""
        table = self.query_one(DataTable)
        current = self.current()
        keep = keep or (current.name if current else None)
        table.clear()
        for node in self.nodes().values():
            retrieve = "C-GET" if node.retrieve == "get" else f"C-MOVE → :{node.move_port}"
            if node.kind == "dicomweb":
                retrieve = "WADO-RS"
            table.add_row(
                node.name,
                node.address,
                node.calling_aet,
                retrieve,
                "on" if node.tls else "",
                self.echo_results.get(node.name, Text("")),
                key=node.name,
            )
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))
        where = workstation(self).nodes_file
        text = f"Saved in {where}" if where else "Nodes of this session"
        self.query_one("#nodes-file", Static).update(
            f"{text} · a add · e edit · Del delete · t C-ECHO · T trace · Enter query"
        )

    def current(self) -> Node | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.nodes().get(str(key))

    def _save(self, node: Node, old_name: str | None = None) -> None:
        try:
            workstation(self).save_node(node, old_name)
        except TuiviewerError as exc:
            self.notify(exc.message, severity="error")
            return
        self.refresh_rows(keep=node.name)

    def action_add(self) -> None:
        def done(node: Node | None) -> None:
            if node is not None:
                self._save(node)
                self.notify(f"Added {node.name}; t tests it with C-ECHO.")

        self.app.push_screen(NodeDialog(None, set(self.nodes())), done)

    def action_edit(self) -> None:
        node = self.current()
        if node is None:
            return
        if node.kind != "dimse":
            self.notify(f"{node.describe()}: DICOMweb nodes are edited in nodes.toml.")
            return
        old = node.name

        def done(new: Node | None) -> None:
            if new is not None:
                self._save(new, old)

        self.app.push_screen(NodeDialog(node, set(self.nodes())), done)

    def action_delete(self) -> None:
        node = self.current()
        if node is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                workstation(self).delete_node(node.name)
                self.refresh_rows()

        self.app.push_screen(ConfirmDialog(f"Delete node {node.name}?", yes="Delete"), confirmed)

    def action_test(self) -> None:
        node = self.current()
        if node is None:
            return
        self._echo_result(node.name, Text("…", style="dim"))
        self.traces[node.name] = AssociationTrace()
        self.run_echo(node, self.traces[node.name])

    def _echo_result(self, name: str, text: Text) -> None:
        """Show a C-ECHO result in its row (the rows and the cursor stay where they are)."""
        self.echo_results[name] = text
        table = self.query_one(DataTable)
        if name in table.rows:
            table.update_cell(name, "echo", text, update_width=True)

    @work(thread=True, exclusive=False, exit_on_error=False, group="echo", description="C-ECHO")
    def run_echo(self, node: Node, trace: AssociationTrace) -> None:
        self.post_message(echo_node(node, trace))

    @on(EchoAnswered)
    def _echo_answered(self, message: EchoAnswered) -> None:
        if message.error:
            self._echo_result(message.node_name, Text("failed", style="bold red"))
            self.notify(message.error, severity="error", timeout=10)
        else:
            self._echo_result(message.node_name, Text(f"OK {message.rtt_ms:.1f} ms", style="green"))

    def action_trace(self) -> None:
        node = self.current()
        trace = self.traces.get(node.name) if node else None
        if node is None or trace is None:
            self.notify("No C-ECHO of this node yet: t tests it.")
            return
        self.app.push_screen(
            ValueDialog(f"{node.name}: association trace (no PHI)", trace.format())
        )

    @on(DataTable.RowSelected, "#nodes")
    def _row_selected(self) -> None:
        # A click on the row under the cursor selects it: that is "Query it" too.
        self.action_use()

    def action_use(self) -> None:
        node = self.current()
        if node is not None:
            workstation(self).query_node(node.name)
