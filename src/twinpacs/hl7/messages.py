"""One HL7 message in, one acknowledgement out: parse it (python-hl7), turn it into core.ris
commands (ADT^A01/A04/A08 register, ADT^A40 merge, ORM^O01/OMI^O23 orders), apply them, and
record the message as received with its ACK in the index's hl7_messages.

Everything a message says is read and checked before the first command runs, so a malformed
or refused message changes nothing. `handle` never raises: whatever goes wrong becomes an AE
or AR that says what and where, and the connection carries on."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

import hl7

from ..core.access_trail import AccessEntry, AccessTrail, Action, Outcome
from ..core.principal import Principal
from ..core.ris import Order, Patient, Ris
from ..errors import InvalidInput, NotFound
from ..index.hl7_log import Hl7Log, Hl7Record
from ..index.schema import ris_patients
from .acks import (
    DUPLICATE_KEY,
    INTERNAL_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    UNKNOWN_KEY,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION,
    Hl7Error,
    build_ack,
    error,
    rejected,
)
from .fields import Found, birth_date, check_length, identifier, segments, sex, xpn
from .orders import OrderCommand, OrderReader

log = logging.getLogger(__name__)

SUPPORTED = {"ADT": ("A01", "A04", "A08", "A40"), "ORM": ("O01",), "OMI": ("O23",)}
_VERSION = re.compile(r"^2\.\d")


@dataclass(frozen=True)
class Step:
    """One command of a message, applied only once every command of the message was read."""

    label: str  # for the refusal of a later step: what was applied before it
    run: Callable[[], object]


def _limit(column: str) -> int | None:
    return getattr(ris_patients.c[column].type, "length", None)


def decode(content: bytes) -> tuple[str, str]:
    """The text and its codec: UTF-8 (HL7's preferred set), else ISO 8859-1, which maps
    every byte, so nothing a sender wrote is lost from the record."""
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return content.decode("latin-1"), "latin-1"


def parse(text: str) -> hl7.Message:
    """The message, or AR when it is not one HL7 v2 message."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip()
    if not text:
        raise rejected(SEGMENT_SEQUENCE, "the message is empty")
    if not text.startswith("MSH") or len(text) < 8:
        raise rejected(SEGMENT_SEQUENCE, "not an HL7 v2 message: it does not begin with an MSH segment", "MSH")
    if text.count("\rMSH" + text[3]):
        raise rejected(SEGMENT_SEQUENCE, "more than one message in one MLLP frame (batches are not accepted)",
                       "MSH^2")
    try:
        return hl7.parse(text)
    except (hl7.ParseException, ValueError, IndexError) as exc:
        raise rejected(SEGMENT_SEQUENCE, f"the message cannot be parsed: {exc}", "MSH") from None


class Hl7Handler:
    def __init__(self, ris: Ris, audit: Hl7Log, order_fields: Mapping[str, Sequence[str]], zone: tzinfo | None,
                 clock: Callable[[], datetime], trail: AccessTrail | None = None) -> None:
        self.ris, self.audit, self.zone, self.clock = ris, audit, zone, clock
        self.trail = trail  # every patient and order change applied, with its outcome
        self.orders = OrderReader(order_fields, zone)

    def handle(self, content: bytes, remote: str) -> bytes:
        """The acknowledgement (without MLLP framing) of one message."""
        received_at = self.clock()
        text, codec = decode(content)
        source: hl7.Message | None = None
        control_id = message_type = ""
        failure: Hl7Error | None = None
        try:
            source = parse(text)
            msh = Found(source.segment("MSH"), 1)
            control_id = msh.value(10)
            message_type = "^".join(p for p in (msh.value(9, 1), msh.value(9, 2)) if p)
            self._apply(source, msh, control_id, remote)
        except Hl7Error as exc:
            failure = exc
        except Exception:
            log.exception("HL7 message %s from %s could not be processed", control_id or "(no MSH-10)", remote)
            failure = rejected(INTERNAL_ERROR, "twinpacs could not process the message; it was not applied "
                               "(the reason is in the twinpacs log)")
        ack = build_ack(source, control_id, failure)
        if failure is not None:
            log.warning("HL7 %s %s from %s: %s %s", message_type or "message", control_id, remote, ack.code,
                        failure.describe())
        self._record(Hl7Record(received_at, remote, control_id, message_type, text, ack.code,
                               failure.describe() if failure else ""))
        return ack.text.encode(codec, "replace")

    def refuse(self, content: bytes, remote: str, reason: str) -> bytes:
        """The AR for a frame that carries no message twinpacs can read (e.g. no <VT> start)."""
        failure = rejected(SEGMENT_SEQUENCE, reason)
        ack = build_ack(None, "", failure)
        log.warning("HL7 frame from %s refused: %s", remote, reason)
        self._record(Hl7Record(self.clock(), remote, "", "", decode(content)[0], ack.code, failure.describe()))
        return ack.text.encode("ascii", "replace")

    def _record(self, entry: Hl7Record) -> None:
        try:
            self.audit.record(entry)
        except Exception:  # the ACK still goes out: the sender must not resend what was applied
            log.exception("HL7 message %s from %s could not be recorded", entry.control_id, entry.remote)

    # -- dispatch ----------------------------------------------------------------------------

    def _apply(self, message: hl7.Message, msh: Found, control_id: str, remote: str) -> None:
        version = msh.value(12)
        if not _VERSION.match(version):
            raise rejected(UNSUPPORTED_VERSION, f"HL7 version {version!r} is not supported (2.x is)", msh.erl(12))
        kind, event = msh.value(9, 1).upper(), msh.value(9, 2).upper()
        if not kind:
            raise rejected(REQUIRED_FIELD_MISSING, "the message type (MSH-9) is empty", msh.erl(9))
        if kind not in SUPPORTED:
            raise rejected(UNSUPPORTED_MESSAGE_TYPE, f"message type {kind} is not supported "
                           "(ADT, ORM and OMI are)", msh.erl(9, 1))
        if event not in SUPPORTED[kind]:
            raise rejected(UNSUPPORTED_EVENT, f"{kind}^{event or '(no trigger event)'} is not supported "
                           f"({', '.join(f'{kind}^{e}' for e in SUPPORTED[kind])} are)", msh.erl(9, 2))
        if not control_id:
            raise rejected(REQUIRED_FIELD_MISSING, "the message control ID (MSH-10) is empty", msh.erl(10))
        found = segments(message)
        # Who changes patient data: the sending application and facility (MSH-3, MSH-4), from the peer's address.
        sender = Principal("^".join(v for v in (msh.value(3), msh.value(4)) if v) or "unknown", "hl7",
                           "application", remote.rpartition(":")[0] or remote)
        why = f"{kind}^{event}, message {control_id}"
        if kind == "ADT" and event == "A40":
            steps = self._merges(found, control_id, sender)
        elif kind == "ADT":
            patient = self._patient(found)
            label = f"patient {patient.patient_id}"
            action: Action = "correction" if event == "A08" else "store"
            steps = [Step(label, self._recorded(lambda: self.ris.register_patient(patient), AccessEntry(
                sender, action, "success", "hl7", patient.patient_id, "", f"{label} ({why})")))]
        else:
            steps = [self._order_step(c, sender, why) for c in self.orders.read(found, lambda: self._patient(found))]
        _run(steps)

    # -- patients ----------------------------------------------------------------------------

    def _patient(self, found: Sequence[Found]) -> Patient:
        pid = next((f for f in found if f.name == "PID"), None)
        if pid is None:
            raise error(SEGMENT_SEQUENCE, "the message has no PID segment (the patient)", "PID")
        return self._patient_of(pid)

    @staticmethod
    def _patient_of(pid: Found) -> Patient:
        patient_id, issuer = identifier(pid, 3)
        if not patient_id:
            raise error(REQUIRED_FIELD_MISSING, "the patient identifier (PID-3) is empty", pid.erl(3))
        check_length(patient_id, _limit("PatientID"), "patient identifier", pid.erl(3, 1))
        check_length(issuer, _limit("IssuerOfPatientID"), "issuer of the patient identifier", pid.erl(3, 4))
        name = xpn(pid, 5)
        check_length(name, _limit("PatientName"), "patient name", pid.erl(5))
        return Patient(patient_id, issuer, name, birth_date(pid.value(7), pid.erl(7)),
                       sex(pid.value(8), pid.erl(8)))

    def _merges(self, found: Sequence[Found], control_id: str, sender: Principal) -> list[Step]:
        """A40: each PID (the surviving patient) with the MRG after it (MRG-1: the prior ID)."""
        pids = [f for f in found if f.name == "PID"]
        mrgs = [f for f in found if f.name == "MRG"]
        if not pids:
            raise error(SEGMENT_SEQUENCE, "the merge has no PID segment (the surviving patient)", "PID")
        if not mrgs:
            raise error(SEGMENT_SEQUENCE, "the merge has no MRG segment (the prior patient)", "MRG")
        if len(pids) != len(mrgs):
            raise error(SEGMENT_SEQUENCE, f"{len(pids)} PID but {len(mrgs)} MRG segments: each surviving "
                        "patient needs the MRG of its prior identifier", "MRG")
        steps = []
        for pid, mrg in zip(pids, mrgs):
            surviving = self._patient_of(pid)
            prior_id, prior_issuer = identifier(mrg, 1)
            if not prior_id:
                raise error(REQUIRED_FIELD_MISSING, "the prior patient identifier (MRG-1) is empty", mrg.erl(1))
            label = f"merge of {prior_id} into {surviving.patient_id}"
            merge = _merge(self.ris, surviving, prior_id, prior_issuer, control_id, mrg.erl(1))
            steps.append(Step(label, self._recorded(merge, AccessEntry(
                sender, "merge", "success", "hl7", surviving.patient_id, "", f"{label} (message {control_id})"))))
        return steps

    def _recorded(self, run: Callable[[], object], entry: AccessEntry) -> Callable[[], object]:
        """`run`, with its outcome in the access trail: `entry` as it is, or failed; committed at
        once, as every change to patient data is."""
        def recorded() -> object:
            outcome: Outcome = "failed"
            try:
                result = run()
                outcome = "success"
                return result
            finally:
                if self.trail is not None:
                    self.trail.record_now(replace(entry, outcome=outcome))
        return recorded

    # -- orders ------------------------------------------------------------------------------

    def _order_step(self, command: OrderCommand, sender: Principal, why: str) -> Step:
        """The command's Ris call; XO and cancels of unknown orders, and an XO taking another
        order's accession number, are refused here, before anything of the message is applied."""
        placer, order = command.placer_number, command.order
        known = self.ris.index.order_by_placer(placer)
        if command.control != "NW" and known is None:
            raise error(UNKNOWN_KEY, f"no order with placer number {placer}", command.placer_where)
        about = order or known
        patient_id = about.patient.patient_id if about else ""

        def step(what: str, action: Action, run: Callable[[], object]) -> Step:
            label = f"order {placer} ({what})"
            return Step(label, self._recorded(run, AccessEntry(sender, action, "success", "hl7", patient_id, "",
                                                                f"{label} ({why})")))

        if command.control == "XO" and order is not None:
            clash = self.ris.order_for_accession(order.accession_number)
            if clash is not None and clash.placer_number != placer:
                raise error(DUPLICATE_KEY, f"accession number {order.accession_number} already belongs to order "
                            f"{clash.placer_number}", command.accession_where)
            return step("changed", "correction", _guarded(lambda: self.ris.change_order(order), command.placer_where))
        if order is None:
            return step("cancelled", "correction", _guarded(lambda: self.ris.cancel_order(placer),
                                                            command.placer_where))
        return step("new", "store", lambda: self._place(order, command))

    def _place(self, order: Order, command: OrderCommand) -> None:
        try:
            self.ris.place_order(order)
        except InvalidInput as exc:  # the placer or accession number is taken (the rest was checked)
            taken_placer = self.ris.index.order_by_placer(order.placer_number) is not None
            raise error(DUPLICATE_KEY, exc.message,
                        command.placer_where if taken_placer else command.accession_where) from None


def _guarded(call: Callable[[], object], where: str) -> Callable[[], object]:
    def run() -> object:
        try:
            return call()
        except NotFound as exc:
            raise error(UNKNOWN_KEY, exc.message, where) from None
    return run


def _merge(ris: Ris, surviving: Patient, prior_id: str, prior_issuer: str, control_id: str,
           where: str) -> Callable[[], object]:
    def run() -> object:
        try:
            return ris.merge_patients(surviving, prior_id, prior_issuer, message_id=control_id)
        except NotFound as exc:
            raise error(UNKNOWN_KEY, exc.message, where) from None
        except InvalidInput as exc:
            raise error(INTERNAL_ERROR, exc.message, where) from None
    return run


def _run(steps: Sequence[Step]) -> None:
    """Apply the steps in order; a refusal after the first names what was already applied."""
    done: list[str] = []
    for step in steps:
        try:
            step.run()
        except Hl7Error as exc:
            if done:
                exc.message += f" (applied before it: {', '.join(done)})"
            raise
        except Exception:
            if not done:
                raise
            log.exception("HL7 step %s failed after %s", step.label, done)
            raise rejected(INTERNAL_ERROR, f"twinpacs could not apply {step.label} (the reason is in the twinpacs "
                           f"log); applied before it: {', '.join(done)}") from None
        done.append(step.label)
