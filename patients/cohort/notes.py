"""Writes the demo cohort's clinical notes from one visit's structured facts.

The generator decides what happened (readings, medication changes, referrals, follow-ups); this
module only turns those facts into varied English prose with section headers, so every number and
drug in a note comes from the bundle's structured record. Deliberate imperfections (a stale
medication list, a transcription slip) are decided by the generator and arrive here as data.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Literal

NoteKind = Literal["hp", "progress", "consult", "nurse", "dsn"]
Action = Literal["start", "stop", "increase", "decrease", "switch", "hold"]

ROLE_TITLES: dict[str, str] = {
    "general_practitioner": "general practice",
    "cardiologist": "cardiology",
    "endocrinologist": "endocrinology",
    "diabetes_specialist_nurse": "the diabetes nursing team",
    "practice_nurse": "the practice nurse clinic",
}


@dataclass(frozen=True)
class MedLine:
    """One medication as a clinician would list it (``name`` is the generic ingredient)."""

    name: str
    dose: str
    frequency: str

    def text(self) -> str:
        return f"{self.name} {self.dose} {self.frequency}"


@dataclass(frozen=True)
class MedChange:
    """A medication decision taken at the visit; ``old`` is the previous line for changes."""

    action: Action
    new: MedLine | None
    old: MedLine | None
    reason: str


@dataclass(frozen=True)
class PriorContact:
    """Another clinician's recent contact that this note refers to."""

    author: str
    role: str
    date: dt.date
    changes: tuple[MedChange, ...]


@dataclass(frozen=True)
class FollowUp:
    """A follow-up set at this visit, with its due date."""

    kind: str
    text: str
    due: dt.date


@dataclass(frozen=True)
class ClosedFollowUp:
    """An earlier follow-up that this visit completes, with what was found."""

    text: str
    result: str


@dataclass
class NoteContext:
    """Everything one note says, already consistent with the structured record."""

    kind: NoteKind
    author: str
    author_role: str
    date: dt.date
    patient_name: str
    sex: str
    age: int
    problems: list[str]
    current_meds: list[MedLine]
    changes: list[MedChange]
    bp: str
    weight: str
    bmi: str
    labs: list[tuple[str, str]] = field(default_factory=list)
    stale_meds: list[MedLine] = field(default_factory=list)
    prior: list[PriorContact] = field(default_factory=list)
    home_bp: str | None = None
    smoking: str = "never"
    family_history: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    followups_new: list[FollowUp] = field(default_factory=list)
    followups_closed: list[ClosedFollowUp] = field(default_factory=list)
    hypothetical: str | None = None
    referral: tuple[str, str] | None = None
    referred_by: str | None = None
    referral_reason: str | None = None
    bp_status: str = "controlled"
    glucose_status: str | None = None


NEGATIVES = (
    "chest pain",
    "palpitations",
    "breathlessness on exertion",
    "orthopnoea",
    "headaches",
    "visual disturbance",
    "dizziness on standing",
    "polyuria or polydipsia",
    "symptoms of hypoglycaemia",
    "leg claudication",
)
EXAM_NEGATIVES = (
    "No ankle oedema.",
    "Heart sounds normal, no murmurs.",
    "Chest clear.",
    "Peripheral pulses palpable.",
    "No carotid bruits.",
    "JVP not raised.",
)


def _fmt_date(d: dt.date, rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        return d.isoformat()
    if style == 1:
        return f"{d.day} {d:%b %Y}"
    return f"{d:%d/%m/%Y}"


def _pick(rng: random.Random, options: tuple[str, ...] | list[str]) -> str:
    return options[rng.randrange(len(options))]


def _change_sentence(ch: MedChange, rng: random.Random) -> str:
    """One plan line for a medication decision, in one of several phrasings."""
    new, old = ch.new, ch.old
    because = f" because of {ch.reason}" if ch.reason else ""
    if ch.action == "start" and new is not None and ch.reason == "restart":
        return f"Restart {new.name} {new.dose} {new.frequency} now that the symptoms have settled."
    if ch.action == "start" and new is not None:
        verb = _pick(rng, ("Start", "Commence", "Started", "Initiate"))
        return f"{verb} {new.name} {new.dose} {new.frequency}{because}."
    if ch.action in ("increase", "decrease") and new is not None and old is not None:
        word = "Increase" if ch.action == "increase" else "Reduce"
        return _pick(
            rng,
            (
                f"{word} {new.name} from {old.dose} to {new.dose} {new.frequency}{because}.",
                f"{new.name.capitalize()} dose {'increased' if ch.action == 'increase' else 'reduced'}"
                f" to {new.dose} {new.frequency} (was {old.dose}){because}.",
            ),
        )
    if ch.action == "switch" and new is not None and old is not None:
        return _pick(
            rng,
            (
                f"Stop {old.name}{because}; start {new.name} {new.dose} {new.frequency}.",
                f"Switch {old.name} {old.dose} to {new.name} {new.dose} {new.frequency}{because}.",
            ),
        )
    if ch.action == "stop" and old is not None:
        return _pick(
            rng,
            (
                f"Stop {old.name}{because}.",
                f"Discontinue {old.name} {old.dose}{because}.",
            ),
        )
    if ch.action == "hold" and old is not None:
        return f"Hold {old.name} for now{because}; review at next visit."
    return ""


def _past_change_phrase(ch: MedChange) -> str:
    new, old = ch.new, ch.old
    because = f" because of {ch.reason}" if ch.reason else ""
    if ch.action == "start" and new is not None:
        again = "restarted" if ch.reason == "restart" else "started"
        return f"{again} {new.name} {new.dose} {new.frequency}"
    if ch.action == "increase" and new is not None and old is not None:
        return f"increased {new.name} from {old.dose} to {new.dose}"
    if ch.action == "decrease" and new is not None and old is not None:
        return f"reduced {new.name} to {new.dose}{because}"
    if ch.action == "switch" and new is not None and old is not None:
        return f"stopped the {old.name}{because}; started {new.name} {new.dose} {new.frequency}"
    if ch.action == "stop" and old is not None:
        return f"stopped the {old.name}{because}"
    if ch.action == "hold" and old is not None:
        return f"put the {old.name} on hold{because}"
    return ""


def _prior_sentence(p: PriorContact, rng: random.Random) -> str:
    where = ROLE_TITLES.get(p.role, p.role)
    when = _fmt_date(p.date, rng)
    acts = [a for a in (_past_change_phrase(c) for c in p.changes) if a]
    if not acts:
        return f"Seen by {p.author} in {where} on {when}; no medication changes were made."
    joined = " and ".join(acts)
    options = [
        f"Seen by {p.author} in {where} on {when}, who {joined}.",
        f"Since last review, {p.author} ({where}, {when}) {joined}.",
    ]
    if p.role in ("cardiologist", "endocrinologist"):
        options.append(f"Letter from {p.author} ({where}) dated {when}: {joined}.")
    return _pick(rng, options)


def _history(ctx: NoteContext, rng: random.Random) -> list[str]:
    lines: list[str] = []
    pronoun = "She" if ctx.sex == "female" else "He"
    first = ctx.patient_name.split()[0]
    if ctx.kind == "hp":
        lines.append(
            f"{ctx.age}-year-old {'woman' if ctx.sex == 'female' else 'man'} registering for "
            f"review of {', '.join(ctx.problems) if ctx.problems else 'cardiovascular risk'}."
        )
    elif ctx.kind == "consult":
        why = f" with {ctx.referral_reason}" if ctx.referral_reason else ""
        opener = (
            f"Referred by {ctx.referred_by}{why}."
            if ctx.referred_by
            else f"Thank you for referring {first}{why}."
        )
        lines.append(
            f"{opener} {ctx.age}-year-old with "
            f"{', '.join(ctx.problems) if ctx.problems else 'cardiovascular risk factors'}."
        )
    elif ctx.kind == "nurse":
        lines.append(
            _pick(
                rng,
                (
                    f"{first} attended for {'annual review and bloods' if ctx.labs else 'BP check'}.",
                    f"Nurse review. {first} attended on time.",
                ),
            )
        )
    elif ctx.kind == "dsn":
        lines.append(
            _pick(
                rng,
                (
                    f"Diabetes nurse review for {first}.",
                    f"{first} seen in the diabetes clinic for education and titration.",
                ),
            )
        )
    else:
        lines.append(
            _pick(
                rng,
                (
                    f"Review of {', '.join(ctx.problems) if ctx.problems else 'BP'}.",
                    f"{first} attends for follow-up.",
                    "Routine follow-up.",
                ),
            )
        )
    lines.extend(_prior_sentence(p, rng) for p in ctx.prior)
    for finding in ctx.findings:
        lines.append(f"{pronoun} reports {finding}.")
    negs = rng.sample(NEGATIVES, k=rng.randint(2, 4))
    lines.append(
        _pick(
            rng,
            (
                f"Denies {', '.join(negs[:-1])} or {negs[-1]}.",
                f"No {', no '.join(negs)}.",
                f"{pronoun} denies {negs[0]}; no {' or '.join(negs[1:])}.",
            ),
        )
    )
    if ctx.home_bp:
        lines.append(ctx.home_bp)
    if ctx.smoking == "current":
        lines.append(_pick(rng, ("Current smoker.", "Still smoking, about 10 a day.")))
    elif ctx.smoking == "quit":
        lines.append("Has stopped smoking since the last review - congratulated.")
    elif ctx.smoking == "ex" and rng.random() < 0.3:
        lines.append("Ex-smoker.")
    if ctx.family_history:
        lines.append("Family history: " + "; ".join(ctx.family_history) + ".")
    for closed in ctx.followups_closed:
        lines.append(f"{closed.text}: {closed.result}.")
    return lines


def _medications(ctx: NoteContext, rng: random.Random) -> list[str]:
    meds = list(ctx.current_meds) + list(ctx.stale_meds)
    if not meds:
        return [_pick(rng, ("None.", "No regular medication."))]
    rng.shuffle(meds)
    return [f"- {m.text()}" for m in meds]


def _examination(ctx: NoteContext, rng: random.Random) -> list[str]:
    bp_label = _pick(rng, ("BP", "Blood pressure", "Clinic BP"))
    lines = [f"{bp_label} {ctx.bp}. Weight {ctx.weight}, BMI {ctx.bmi}."]
    if ctx.kind in ("hp", "consult", "progress"):
        lines.append(" ".join(rng.sample(EXAM_NEGATIVES, k=rng.randint(1, 3))))
    if ctx.labs:
        lines.append("Results: " + "; ".join(f"{k} {v}" for k, v in ctx.labs) + ".")
    return lines


def _assessment(ctx: NoteContext, rng: random.Random) -> list[str]:
    lines = []
    bp_words = {
        "controlled": ("BP at target.", "Blood pressure well controlled."),
        "above": ("BP above target.", "Blood pressure not at target."),
        "new": ("New diagnosis of hypertension.", "Hypertension, newly diagnosed."),
        "suspected": (
            "Raised clinic BP; hypertension suspected, to be confirmed on home readings.",
            "Possible hypertension - needs out-of-office confirmation.",
        ),
        "borderline": (
            "Single raised reading today; average of recent readings at target.",
            "BP a little high today but at target on average - no change.",
        ),
        "none": ("",),
    }
    bp_line = _pick(rng, bp_words.get(ctx.bp_status, ("",)))
    if bp_line:
        lines.append(bp_line)
    if ctx.glucose_status:
        lines.append(ctx.glucose_status)
    if ctx.problems and rng.random() < 0.6:
        lines.append("Problems: " + ", ".join(ctx.problems) + ".")
    return lines or ["Stable."]


def _advice(ctx: NoteContext, rng: random.Random) -> list[str]:
    """Education and lifestyle lines that fit the patient's problems and medicines."""
    names = {m.name for m in ctx.current_meds} | {
        c.new.name for c in ctx.changes if c.new is not None
    }
    options: list[str] = []
    if "hypertension" in ctx.problems:
        options += [
            "Salt reduction and alcohol within recommended limits discussed.",
            "Home BP technique checked: seated, arm supported, two readings morning and evening.",
        ]
    if "type 2 diabetes" in ctx.problems:
        options += [
            "Feet examined: pulses present, monofilament sensation intact.",
            "Dietary advice reinforced; aim for 150 minutes of moderate activity a week (WHO).",
        ]
        if names & {"metformin", "empagliflozin", "lisinopril", "ramipril", "losartan"}:
            options.append(
                "Sick-day rules explained: pause metformin, SGLT2 inhibitor and ACE inhibitor/ARB "
                "if vomiting or unable to eat."
            )
    if names & {"insulin glargine", "glipizide"}:
        options.append("Hypoglycaemia recognition and treatment reviewed; driving advice given.")
    if "prediabetes" in ctx.problems or "obesity" in ctx.problems:
        options.append("Weight management discussed; a 5-10% weight loss would help.")
    if not options or ctx.kind == "consult":
        return []
    return rng.sample(options, k=min(len(options), rng.randint(0, 2)))


def _plan(ctx: NoteContext, rng: random.Random) -> list[str]:
    lines = [s for s in (_change_sentence(c, rng) for c in ctx.changes) if s]
    if not ctx.changes and ctx.current_meds:
        lines.append(_pick(rng, ("Continue current medication.", "No change to medication.")))
    if ctx.hypothetical:
        lines.append(ctx.hypothetical)
    lines.extend(_advice(ctx, rng))
    if ctx.referral:
        specialty, reason = ctx.referral
        lines.append(f"Refer to {specialty} for {reason}.")
    for fu in ctx.followups_new:
        lines.append(f"{fu.text} (due {_fmt_date(fu.due, rng)}).")
    if ctx.smoking == "current" and ctx.kind in ("hp", "progress", "nurse") and rng.random() < 0.5:
        lines.append(
            _pick(
                rng,
                (
                    "Smoking cessation advice given; referred to stop-smoking service.",
                    "Brief advice on stopping smoking; offered nicotine replacement.",
                ),
            )
        )
    return lines


HEADERS: dict[NoteKind, tuple[str, ...]] = {
    "hp": ("NEW PATIENT HISTORY AND PHYSICAL", "HISTORY AND PHYSICAL"),
    "progress": ("PROGRESS NOTE", "GP REVIEW"),
    "consult": ("CONSULTATION", "OUTPATIENT CONSULTATION"),
    "nurse": ("PRACTICE NURSE NOTE", "NURSE REVIEW"),
    "dsn": ("DIABETES SPECIALIST NURSE NOTE", "DIABETES NURSE REVIEW"),
}


def write_note(ctx: NoteContext, rng: random.Random) -> str:
    """Render one note as plain text with HISTORY/MEDICATIONS/EXAMINATION/ASSESSMENT/PLAN sections."""
    title = _pick(rng, HEADERS[ctx.kind])
    parts = [
        f"{title} - {ctx.date.isoformat()}",
        f"Patient: {ctx.patient_name}    Author: {ctx.author}",
        "",
        "HISTORY:",
        " ".join(_history(ctx, rng)),
        "",
        "MEDICATIONS:",
        *_medications(ctx, rng),
        "",
        "EXAMINATION:",
        " ".join(_examination(ctx, rng)),
        "",
        "ASSESSMENT:",
        " ".join(_assessment(ctx, rng)),
        "",
        "PLAN:",
        *(f"- {line}" for line in _plan(ctx, rng)),
        "",
        _pick(rng, (f"{ctx.author}", f"Signed: {ctx.author}", f"-- {ctx.author}")),
    ]
    return "\n".join(parts) + "\n"
