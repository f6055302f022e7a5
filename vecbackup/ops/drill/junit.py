"""A drill report as JUnit XML, the format CI systems (GitHub Actions reporters, GitLab, Jenkins) read.

One ``<testsuites>`` root holding one ``<testsuite name="vecbackup-drill">``, one ``<testcase>`` per check;
a failed check carries ``<failure message=...>``, a skipped one ``<skipped message=...>``. Each testcase's
details go to its ``<system-out>`` as JSON; the backup id, collection, RTO and RPO, and the search check's recall
numbers (restored copy, live source, their overlap) are suite properties.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import orjson

#: numbers of the search check that become suite properties (search_recall.<name>)
RECALL_PROPERTIES = ("restored_recall", "source_recall", "restored_vs_source", "min_recall", "recall_tolerance")
#: characters XML 1.0 cannot hold at all, even escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def junit_xml(report: dict[str, Any]) -> bytes:
    """The JUnit document for a drill report (the dict DrillReport.to_dict returns)."""
    checks = report.get("checks", [])
    failures = sum(1 for c in checks if c["status"] == "failed")
    skipped = sum(1 for c in checks if c["status"] == "skipped")
    total = round(sum(float(c.get("seconds") or 0) for c in checks), 3)
    counts = {"tests": str(len(checks)), "failures": str(failures), "errors": "0", "skipped": str(skipped),
              "time": f"{total:.3f}"}
    suite_name = _text(report.get("suite", "vecbackup-drill"))
    root = ET.Element("testsuites", {"name": suite_name, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": suite_name, **counts,
                                              "timestamp": _text(report.get("started_at", "")),
                                              "hostname": "vecbackup"})
    props = ET.SubElement(suite, "properties")
    for key in ("backup_id", "collection", "store", "target", "source", "scratch_collection", "scratch_dropped",
                "backup_completed_at", "rto_seconds", "rpo_seconds", "seed", "values"):
        if report.get(key) is not None:
            ET.SubElement(props, "property", {"name": key, "value": _text(report[key])})
    search: dict[str, Any] = next((c.get("details", {}) for c in checks if c["name"] == "search_recall"), {})
    for key in RECALL_PROPERTIES:  # the search check's numbers, for dashboards that read properties
        if search.get(key) is not None:
            ET.SubElement(props, "property", {"name": f"search_recall.{key}", "value": _text(search[key])})
    classname = _text(f"vecbackup.drill.{report.get('collection', '')}")
    for c in checks:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _text(c["name"]),
                                                "time": f"{float(c.get('seconds') or 0):.3f}"})
        message = _text(c.get("message", ""))
        details = _text(orjson.dumps(c.get("details", {}), option=orjson.OPT_INDENT_2, default=str).decode())
        if c["status"] == "failed":
            failure = ET.SubElement(case, "failure", {"message": message, "type": "DrillCheckFailed"})
            failure.text = f"{message}\n\n{details}"
        elif c["status"] == "skipped":
            ET.SubElement(case, "skipped", {"message": message})
        out = ET.SubElement(case, "system-out")
        out.text = f"{message}\n{details}" if message else details
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: dict[str, Any], path: str) -> None:
    with open(path, "wb") as f:
        f.write(junit_xml(report))
