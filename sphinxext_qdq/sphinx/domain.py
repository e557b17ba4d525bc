"""The ``qdq`` domain: documented operators, parameter rows and Q/DQ node rows as
cross-reference targets, and the links a ``qdq-graph`` asks for."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from docutils import nodes
from sphinx import addnodes
from sphinx.directives import ObjectDescription
from sphinx.domains import Domain, ObjType
from sphinx.errors import NoUri
from sphinx.roles import XRefRole
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Set as AbstractSet

    from docutils.nodes import Element
    from sphinx.builders import Builder
    from sphinx.environment import BuildEnvironment

logger = logging.getLogger(__name__)

#: Default for ``qdq_op_fallback_url``: the ONNX operator reference.
ONNX_OP_URL = "https://onnx.ai/onnx/operators/onnx__{op}.html"
#: Op types that may fill ``{op}`` of ``qdq_op_fallback_url`` (the op type comes from the
#: model: anything else, ``../x`` or ``"><script>``, stays unlinked).
OP_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class QdqTarget(NamedTuple):
    """Where a ``qdq`` object is documented."""

    docname: str
    anchor: str
    objtype: str  # "op" | "param" | "node"
    model: str  # model key; "" for operators
    name: str  # name inside the model (or the op type)


def make_anchor(objtype: str, model: str, name: str) -> str:
    """A valid, unique and stable HTML/LaTeX id for any model-derived name."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{model}-{name}" if model else name)
    slug = slug.strip("-").lower()[:48] or "x"
    digest = hashlib.sha1(f"{objtype}\0{model}\0{name}".encode()).hexdigest()[:8]
    return f"qdq-{objtype}-{slug}-{digest}"


def qdq_refnode(builder: Builder, fromdocname: str, todocname: str, anchor: str,
                contnode: Element | list[Element], title: str) -> nodes.reference:
    """``make_refnode``, except in ``singlehtml``: every page is one page there, and
    Sphinx 9's ``#document-<page>#<anchor>`` (two fragments) reaches nothing."""
    if builder.name == "singlehtml":
        return make_refnode(builder, todocname, todocname, anchor, contnode, title)
    return make_refnode(builder, fromdocname, todocname, anchor, contnode, title)


def full_name(model: str, name: str) -> str:
    return f"{model}:{name}" if model else name


def warn_duplicate(objtype: str, what: str, other_doc: str, location: Any) -> None:
    kind = "operator" if objtype == "op" else "model"
    logger.warning(
        "qdq %s %r is already documented in %s; add :no-index: to one of them",
        kind, what, other_doc, location=location, type="qdq", subtype="duplicate",
    )


def warn_ambiguous(objtype: str, target: str, matches: list[QdqTarget], location: Any) -> None:
    """A bare name documented for several models: name every candidate, link none."""
    kind = "parameter" if objtype == "param" else "node"
    names = ", ".join(f"{full_name(t.model, t.name)} ({t.docname})" for t in matches)
    logger.warning(
        "qdq %s %r is ambiguous: %d models document it: %s; write model:name",
        kind, target, len(matches), names, location=location, type="qdq", subtype="ambiguous",
    )


class QdqOpDirective(ObjectDescription[str]):
    """``.. qdq:op:: QuantizeLinear`` documents an operator; graphs link here."""

    @classmethod
    def option_docs(cls) -> dict[str, tuple[str, str]]:
        """(what it takes, what it means) of each option (Sphinx's own for object
        descriptions), for the reference page."""
        return {
            "no-index": ("flag", "Not a cross-reference target: graphs do not link here."),
            "no-index-entry": ("flag", "No entry in the general index."),
            "no-contents-entry": ("flag", "No entry in the table of contents."),
            "no-typesetting": ("flag", "Only the target, no visible description."),
            "noindex": ("flag", "Old spelling of `no-index`."),
            "noindexentry": ("flag", "Old spelling of `no-index-entry`."),
            "nocontentsentry": ("flag", "Old spelling of `no-contents-entry`."),
        }

    def handle_signature(self, sig: str, signode: addnodes.desc_signature) -> str:
        op = sig.strip()
        signode += addnodes.desc_name(op, op)
        return op

    def add_target_and_index(self, name: str, sig: str, signode: addnodes.desc_signature) -> None:
        anchor = make_anchor("op", "", name)
        signode["ids"].append(anchor)
        domain: QdqDomain = self.env.domains["qdq"]  # type: ignore[assignment]
        other = domain.documented_elsewhere("op", "", name)
        if other is not None:
            warn_duplicate("op", name, other, signode)
            return
        domain.note_object("op", "", name, anchor)
        if "no-index-entry" not in self.options:
            self.indexnode["entries"].append(
                ("single", f"{name} (ONNX operator)", anchor, "", None)
            )

    def _toc_entry_name(self, sig_node: addnodes.desc_signature) -> str:
        return sig_node.get("fullname", "") or sig_node.astext()

    def _object_hierarchy_parts(self, sig_node: addnodes.desc_signature) -> tuple[str, ...]:
        return (sig_node.astext(),)


class QdqDomain(Domain):
    """Operators, scales / zero points and Q/DQ nodes of documented models."""

    name = "qdq"
    label = "QDQ"
    object_types: ClassVar[dict[str, ObjType]] = {
        "op": ObjType("operator", "op"),
        "param": ObjType("quantization parameter", "param"),
        "node": ObjType("Q/DQ node", "node"),
    }
    directives: ClassVar[dict[str, type]] = {"op": QdqOpDirective}
    roles: ClassVar[dict[str, XRefRole]] = {
        "op": XRefRole(warn_dangling=True),
        "param": XRefRole(warn_dangling=True),
        "node": XRefRole(warn_dangling=True),
    }
    initial_data: ClassVar[dict[str, Any]] = {"objects": {}, "stems": {}}
    dangling_warnings: ClassVar[dict[str, str]] = {
        "op": "undefined label: qdq operator %(target)s",
        "param": "undefined label: qdq parameter %(target)s",
        "node": "undefined label: qdq node %(target)s",
    }

    @property
    def objects(self) -> dict[tuple[str, str], QdqTarget]:
        return self.data.setdefault("objects", {})

    @property
    def stems(self) -> dict[str, dict[str, str]]:
        """docname -> {file stem of a model: its ``qdq_models`` name} for the models
        the page used under a name: roles may name a model either way."""
        return self.data.setdefault("stems", {})

    def note_model_stem(self, stem: str, key: str) -> None:
        if stem != key:
            self.stems.setdefault(self.env.docname, {})[stem] = key

    def note_object(self, objtype: str, model: str, name: str, anchor: str) -> None:
        self.objects[objtype, full_name(model, name)] = QdqTarget(
            self.env.docname, anchor, objtype, model, name
        )

    def has_object(self, objtype: str, model: str, name: str) -> bool:
        return (objtype, full_name(model, name)) in self.objects

    def documented_elsewhere(self, objtype: str, model: str, name: str) -> str | None:
        """The page that already documents this object, if it is not the current one."""
        other = self.objects.get((objtype, full_name(model, name)))
        if other is not None and other.docname != self.env.docname:
            return other.docname
        return None

    def clear_doc(self, docname: str) -> None:
        for key, target in list(self.objects.items()):
            if target.docname == docname:
                del self.objects[key]
        self.stems.pop(docname, None)

    def merge_domaindata(self, docnames: AbstractSet[str], otherdata: dict[str, Any]) -> None:
        self.stems.update((doc, stems) for doc, stems in otherdata.get("stems", {}).items()
                          if doc in docnames)
        warned: set[tuple[str, str, str]] = set()
        for key, target in otherdata["objects"].items():
            if target.docname not in docnames:
                continue
            mine = self.objects.get(key)
            if mine is None or mine.docname == target.docname:
                self.objects[key] = target
                continue
            what = (target.docname, mine.docname, target.model or key[1])
            if what not in warned:  # one warning per duplicated table, not per row
                warned.add(what)
                warn_duplicate(key[0], target.model or key[1], mine.docname, target.docname)

    def candidates(self, objtype: str, target: str) -> list[QdqTarget]:
        """The exact ``model:name``; else ``stem:name`` for a model documented under a
        ``qdq_models`` name; else every model's object of that bare name (sorted by model:
        more than one is an ambiguous reference)."""
        found = self.objects.get((objtype, target))
        if found is not None:
            return [found]
        if objtype == "op":
            return []
        model, _, name = target.partition(":")
        for stems in self.stems.values():
            if model in stems:
                found = self.objects.get((objtype, full_name(stems[model], name)))
                if found is not None:
                    return [found]
        return sorted((t for (kind, _), t in self.objects.items()
                       if kind == objtype and t.name == target), key=lambda t: t.model)

    def resolve_xref(
        self,
        env: BuildEnvironment,
        fromdocname: str,
        builder: Builder,
        typ: str,
        target: str,
        node: addnodes.pending_xref,
        contnode: Element,
    ) -> nodes.reference | None:
        matches = self.candidates(typ, target)
        if len(matches) > 1 and not node.get("qdq_link_key"):
            warn_ambiguous(typ, target, matches, node)
            raise NoUri(target)  # the text stays, unlinked; no second "undefined" warning
        found = matches[0] if len(matches) == 1 else None
        if found is None:
            return self._resolve_graph_fallback(env, typ, target, node, contnode)
        refnode = qdq_refnode(builder, fromdocname, found.docname, found.anchor, contnode,
                               full_name(found.model, found.name))
        if node.get("qdq_link_key"):
            refnode["qdq_link_key"] = node["qdq_link_key"]
        return refnode

    def _resolve_graph_fallback(
        self, env: BuildEnvironment, typ: str, target: str,
        node: addnodes.pending_xref, contnode: Element,
    ) -> nodes.reference | None:
        """Graph links never warn: an undocumented op links to the operator reference
        (``qdq_op_fallback_url``), anything else simply stays unlinked."""
        if not node.get("qdq_link_key"):
            return None
        pattern = env.config.qdq_op_fallback_url
        if typ != "op" or not pattern or not OP_TYPE_NAME.fullmatch(target):
            raise NoUri(target)  # an op type from the model never shapes a URL
        refnode = nodes.reference("", "", contnode, internal=False,
                                  refuri=pattern.format(op=target), reftitle=target)
        refnode["qdq_link_key"] = node["qdq_link_key"]
        return refnode

    def resolve_any_xref(
        self,
        env: BuildEnvironment,
        fromdocname: str,
        builder: Builder,
        target: str,
        node: addnodes.pending_xref,
        contnode: Element,
    ) -> list[tuple[str, nodes.reference]]:
        results = []
        for typ in ("param", "node", "op"):
            for found in self.candidates(typ, target):  # several: Sphinx's "more than one"
                ref = qdq_refnode(builder, fromdocname, found.docname, found.anchor,
                                   contnode, target)
                results.append((f"qdq:{typ}", ref))
        return results

    def get_objects(self) -> Iterable[tuple[str, str, str, str, str, int]]:
        for (objtype, name), target in sorted(self.objects.items()):
            yield name, name, objtype, target.docname, target.anchor, 1

    def get_full_qualified_name(self, node: Element) -> str | None:
        return node.get("reftarget")
