"""Human-readable tables for the CLI (JSON output is produced elsewhere, unformatted).

Every title, header and cell goes in through :func:`~graftwork.console.table` and
:func:`~graftwork.console.add_row`, which make each string a :func:`~graftwork.console.literal` Text: class
names, group names, split names, texts and file names are shown as written (``[cat]`` is a class called
``[cat]``, not markup) and their control characters as escapes.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ..console import add_row, literal, table


def metrics_tables(result: dict[str, Any]) -> list[Table]:
    head = table(f"evaluation ({result.get('split', 'data')}: {result['n']} examples)", ("", ""),
                 show_header=False)
    add_row(head, "accuracy", f"{result['accuracy']:.4f}")
    add_row(head, "macro F1", f"{result['macro_f1']:.4f}")
    numbers = ("precision", "recall", "f1", "support")
    per = table("per class", ("class", *numbers), right=numbers)
    for name, m in result["per_class"].items():
        add_row(per, name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"])
    labels = result["confusion"]["labels"]
    conf = table("confusion (rows: true, columns: predicted)")
    conf.add_column("")
    for lab in labels:
        conf.add_column(literal(lab), justify="right", overflow="fold")
    for lab, row in zip(labels, result["confusion"]["matrix"], strict=True):
        add_row(conf, lab, *row)
    return [head, per, conf]


def predictions_table(preds: list[dict[str, Any]]) -> Table:
    out = table(None, ("input", "label", "probability", "runners-up"), right=("probability",))
    for p in preds:
        top = p["top"]
        add_row(out, p["input"], top[0]["label"], f"{top[0]['probability']:.3f}",
                ", ".join(f"{t['label']} {t['probability']:.3f}" for t in top[1:]))
    return out


def entities_table(preds: list[dict[str, Any]]) -> Table:
    """NER predictions: one row per entity, the input text on its first row."""
    out = table(None, ("input", "entity", "type", "words", "chars", "score"), right=("score",))
    for p in preds:
        if not p["entities"]:
            add_row(out, p["input"], "(none)", "", "", "", "")
        for k, e in enumerate(p["entities"]):
            add_row(out, p["input"] if k == 0 else "", e["text"], e["type"], f"{e['start']}:{e['end']}",
                    f"{e['char_start']}:{e['char_end']}", f"{e['score']:.3f}")
    return out


def backbones_table(rows: list[dict[str, Any]]) -> Table:
    numbers = ("features", "params (M)")
    out = table(None, ("name", "modality", *numbers, "offline", "note"), right=numbers)
    for r in rows:
        add_row(out, r["name"], r["modality"], r["feature_dim"], f"{r['params_m']:.1f}",
                "yes" if r["offline"] else "no", r["note"])
    return out


def groups_table(groups: dict[str, Any]) -> Table:
    """Per-group accuracy and macro F1 with their bootstrap confidence intervals."""
    level = 1 - groups.get("settings", {}).get("alpha", 0.05)
    numbers = ("n", "accuracy", "macro F1", "ECE")
    out = table(f"per group ({level:.0%} bootstrap intervals)", ("group", *numbers, "note"), right=numbers)
    calib = (groups.get("calibration") or {}).get("per_group", {})
    for name, g in groups["groups"].items():
        acc, f1 = g["accuracy"], g["macro_f1"]
        ece = calib.get(name, {}).get("ece")
        add_row(out, name, g["n"], f"{acc['value']:.3f} [{acc['ci'][0]:.3f}, {acc['ci'][1]:.3f}]",
                f"{f1['value']:.3f} [{f1['ci'][0]:.3f}, {f1['ci'][1]:.3f}]",
                "" if ece is None else f"{ece:.3f}", "" if g["judged"] else "too small to judge")
    return out


def finding_line(finding: dict[str, Any]) -> Text:
    """A finding as one literal line (plus its advice): its message may quote class or group names."""
    advice = f"\n  what to do: {finding['advice']}" if finding.get("advice") else ""
    return literal(f"[{finding['severity']}] {finding['code']}: {finding['message']}{advice}")


def skipped_message(skipped: list[dict[str, str]], limit: int = 20) -> str:
    """What --skip-bad-files left out, for stderr: the count, then one input per line (the first ``limit``)."""
    lines = [f"skipped {len(skipped)} unreadable input(s) (--skip-bad-files):"]
    lines += [f"  - {s['path']}: {s['reason']}" for s in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more (--json lists them all)")
    return "\n".join(lines)
