"""The Species and Settings tabs: a species list for a place and week, saved for ``--slist``;
the user's preferences (species-name language, default output folder, theme).

Preferences live in ``gui.json`` in the user's config folder (``$EDGEBIRD_CONFIG_DIR``, else
``$XDG_CONFIG_HOME/edgebird``, else ``~/.config/edgebird``), written atomically. The interface
text follows the browser's language (Gradio's i18n picks it per page); the language setting
chooses the language of the species' common names (BirdNET's translations, see
``edgebird.species_names``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import gradio as gr

from edgebird import species_names as sn
from edgebird.core.files import atomic_write_bytes

from .handlers import UserError

THEMES = ("light", "dark")
AUTO = "auto"
SPECIES_COLUMNS = ["Scientific name", "Common name", "Occurrence score"]


@dataclass(frozen=True)
class Prefs:
    """What the Settings tab keeps; an unreadable or unknown value falls back to its default."""

    language: str = AUTO  # "auto" (follow the browser), "en", or a translation's code
    output_dir: str = ""
    theme: str = "light"


def config_dir() -> Path:
    if os.environ.get("EDGEBIRD_CONFIG_DIR"):
        return Path(os.environ["EDGEBIRD_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edgebird"


def prefs_path() -> Path:
    return config_dir() / "gui.json"


def load_prefs(path: Path | None = None) -> Prefs:
    """The saved preferences; a missing or broken file gives the defaults (never an error)."""
    path = path or prefs_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Prefs()
    if not isinstance(data, dict):
        return Prefs()
    known = {f.name for f in fields(Prefs)}
    kept = {k: v for k, v in data.items() if k in known and isinstance(v, str)}
    prefs = replace(Prefs(), **kept)
    if prefs.theme not in THEMES:
        prefs = replace(prefs, theme=Prefs.theme)
    return prefs


def save_prefs(language: str, output_dir: str, theme: str, path: Path | None = None) -> str:
    """Write the preferences atomically; returns what the Settings tab shows."""
    if theme not in THEMES:
        raise UserError(f"theme must be one of {', '.join(THEMES)}")
    output_dir = (output_dir or "").strip()
    if output_dir and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise UserError(f"not a folder: {output_dir}")
    path = path or prefs_path()
    prefs = Prefs(language=language or AUTO, output_dir=output_dir, theme=theme)
    try:
        atomic_write_bytes(path, (json.dumps(asdict(prefs), indent=1) + "\n").encode("utf-8"))
    except OSError as exc:
        raise UserError(f"cannot save the settings to {path}: {exc}") from None
    return f"saved to {path}"


def language_choices(saved: str = "") -> list[str]:
    """``auto``, ``en``, every installed translation, and the saved language even when its
    translations are gone (uninstalled since): the page still opens, and the names note says
    how to get them back."""
    codes = [AUTO, sn.ENGLISH] + [c for c in sn.languages() if c != sn.ENGLISH]
    return codes + ([saved] if saved and saved not in codes else [])


def language_box(prefs: Prefs) -> dict:
    """The language dropdown as a page load sets it from the saved preferences."""
    return gr.update(choices=language_choices(prefs.language), value=prefs.language)


def resolve_language(choice: str, accept_language: str = "") -> str:
    """``auto`` -> the browser's first language that has a translation (``zh-CN`` -> ``zh``)."""
    if choice and choice != AUTO:
        return choice
    have = set(sn.languages())
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_")
        for code in (tag, tag.split("_")[0]):
            if code.lower().startswith("en"):
                return sn.ENGLISH
            if code in have:
                return code
    return sn.ENGLISH


def page_language(request: gr.Request | None) -> str:
    """The species-name language for a page: the saved setting, ``auto`` -> the browser's."""
    header = request.headers.get("accept-language", "") if request is not None else ""
    return resolve_language(load_prefs().language, header)


def names_note(lang: str) -> str:
    """Empty when names in ``lang`` are available; else how to get them."""
    if lang == sn.ENGLISH or sn.names_for(lang):
        return ""
    return (f"Common names stay English: BirdNET's translations are not installed. "
            f"Get them with `{sn.INSTALL_HINT}` (data files only, no TensorFlow).")


def species_table(lat, lon, week, threshold, lang: str) -> tuple[list[list], str]:
    """The species likely at a place and week: rows and a one-line summary."""
    from edgebird.species import Location, species_at

    try:
        found = species_at(Location(float(lat), float(lon), int(week), float(threshold)))
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    names = sn.names_for(lang)
    rows = [[sn.scientific_name(lab), sn.display_name(lab, names), round(p, 3)]
            for lab, p in found]
    summary = f"{len(rows)} species at {float(lat):g}, {float(lon):g}, week {int(week)}"
    note = names_note(lang)
    return rows, summary + (f"\n{note}" if note else "")


def save_species(path: str, lat, lon, week, threshold) -> str:
    """Write the list (English labels, as ``--slist`` reads them) atomically."""
    from edgebird.species import Location, species_at, write_species_list

    if not (path or "").strip():
        raise UserError("choose a file or folder to save the species list to")
    try:
        loc = Location(float(lat), float(lon), int(week), float(threshold))
        labels = [lab for lab, _ in species_at(loc)]
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if not labels:
        raise UserError("no species at this place and week: lower the threshold")
    target = Path(path.strip()).expanduser()
    if not target.parent.is_dir() and not target.is_dir():
        raise UserError(f"folder not found: {target.parent}")
    try:
        written = write_species_list(target, labels)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc}") from None
    return f"{len(labels)} species saved to {written} (use it with --slist or 'Species list file')"


def _save_box(prefs: Prefs) -> str:
    return str(Path(prefs.output_dir) / "species_list.txt") if prefs.output_dir else ""


def species_tab(t, app, errors) -> None:
    from edgebird.species import DEFAULT_SF_THRESH

    prefs = load_prefs()
    with gr.Row():
        lat = gr.Number(42.45, minimum=-90, maximum=90, label=t("lat"))
        lon = gr.Number(-76.48, minimum=-180, maximum=180, label=t("lon"))
        week = gr.Number(-1, precision=0, minimum=-1, maximum=48, label=t("week"))
        thresh = gr.Slider(0.01, 0.99, DEFAULT_SF_THRESH, step=0.01, label=t("sf_thresh"))
        lang = gr.Dropdown(language_choices(prefs.language), value=prefs.language,
                           label=t("names_language"))
    make = gr.Button(t("make_list"), variant="primary", elem_id="make-species")
    summary = gr.Textbox(label=t("sp_summary"), interactive=False, lines=2,
                         elem_id="species-summary")
    table = gr.Dataframe(headers=SPECIES_COLUMNS, label=t("sp_table"), interactive=False,
                         elem_id="species-table", max_height=420)
    with gr.Row():
        path = gr.Textbox(_save_box(prefs), label=t("sp_save_to"),
                          placeholder="/path/to/species_list.txt", elem_id="species-path")
        save = gr.Button(t("sp_save"), elem_id="save-species")
    saved = gr.Textbox(label=t("status"), interactive=False, elem_id="species-saved")

    def make_fn(la, lo, we, th, lg, request: gr.Request):
        header = request.headers.get("accept-language", "") if request is not None else ""
        return species_table(la, lo, we, th, resolve_language(lg, header))

    make.click(errors(make_fn), [lat, lon, week, thresh, lang], [table, summary])
    save.click(errors(save_species), [path, lat, lon, week, thresh], saved)

    def from_prefs():  # each page load starts from the saved settings (not the server's start)
        p = load_prefs()
        return language_box(p), _save_box(p)

    app.load(from_prefs, None, [lang, path])


def settings_tab(t, app, errors) -> None:
    prefs = load_prefs()
    gr.Markdown(t("settings_note"))
    lang = gr.Dropdown(language_choices(prefs.language), value=prefs.language,
                       label=t("names_language"),
                       elem_id="settings-language")
    note = names_note("zh")
    if note:
        gr.Markdown(note)
    out = gr.Textbox(prefs.output_dir, label=t("default_output"), placeholder="/path/to/results",
                     elem_id="settings-output")
    theme = gr.Radio(list(THEMES), value=prefs.theme, label=t("theme"), elem_id="settings-theme")
    save = gr.Button(t("save_settings"), variant="primary", elem_id="save-settings")
    status = gr.Textbox(label=t("status"), interactive=False, elem_id="settings-status")
    save.click(errors(save_prefs), [lang, out, theme], status)
    apply = ("(t) => { document.body.classList.toggle('dark', t === 'dark'); "
             "return t; }")
    theme.change(None, theme, None, js=apply)
    def from_prefs():
        p = load_prefs()
        return language_box(p), p.output_dir, p.theme

    app.load(from_prefs, None, [lang, out, theme]).then(
        None, theme, None, js=apply)
