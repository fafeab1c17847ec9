"""ORM^O01 and OMI^O23 as order commands: each ORC starts an order group (ORC-1 NW new, XO
change, CA/DC cancel); its fields are read from the locations of [ris] order_fields, the
first location that holds a value winning, in the group's segments before the header's
(PV1-8 lives outside the group). Everything is read and checked before anything is applied."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from ..core.ris import Code, Order, Patient
from ..index.schema import orders as orders_table
from .acks import (
    DUPLICATE_KEY,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE,
    TABLE_VALUE_NOT_FOUND,
    error,
)
from .fields import Found, Location, check_length, priority, timestamp, xcn

CONTROLS = {"NW": "new", "XO": "change", "CA": "cancel", "DC": "cancel"}

# Order fields stored in a column of bounded length: a longer value is refused (AE 104), not cut.
_BOUNDED = ("placer_number", "filler_number", "accession_number", "modality", "body_part", "station_ae",
            "referring_physician")


def _limit(column: str) -> int | None:
    return getattr(orders_table.c[column].type, "length", None)


@dataclass(frozen=True)
class Value:
    """An order field as read: the raw text, or for coded and name fields their parts."""

    text: str
    where: str  # ERR-2 location of the value (or of where it was expected)
    code: Code = Code("")


@dataclass(frozen=True)
class OrderCommand:
    control: str  # NW, XO, CA or DC
    placer_number: str
    placer_where: str
    order: Order | None  # None for a cancel
    accession_where: str = ""


class Group:
    """One order group (ORC and what follows it up to the next ORC) and the message header."""

    def __init__(self, own: Sequence[Found], header: Sequence[Found]) -> None:
        self.own, self.header = own, header

    def find(self, segment: str) -> Found | None:
        for found in (*self.own, *self.header):
            if found.name == segment:
                return found
        return None


def _read_field(name: str, found: Found, loc: Location) -> Value:
    where = found.erl(loc.field, loc.component, loc.subcomponent)
    if loc.component:  # a component named in the setting is taken as it is
        text = found.at(loc)
        return Value(text, where, Code(text))
    if name == "procedure":  # CWE: code^text^coding scheme
        code = Code(found.value(loc.field, 1), found.value(loc.field, 3), found.value(loc.field, 2))
        return Value(code.value or code.meaning, where, code)
    if name == "reason":  # CWE or free text: the text, else the code
        return Value(found.value(loc.field, 2) or found.value(loc.field, 1), where)
    if name == "referring_physician":  # XCN
        return Value(xcn(found, loc.field), where)
    return Value(found.at(loc), where)


class OrderReader:
    def __init__(self, order_fields: Mapping[str, Sequence[str]], zone: tzinfo | None) -> None:
        self.locations = {name: [Location.parse(loc) for loc in locs] for name, locs in order_fields.items()}
        self.zone = zone

    def read(self, segments: Sequence[Found], patient: Callable[[], Patient]) -> list[OrderCommand]:
        """The commands of the message, in order; `patient` reads PID (asked only for NW/XO,
        since a cancel needs no patient)."""
        starts = [i for i, found in enumerate(segments) if found.name == "ORC"]
        if not starts:
            raise error(SEGMENT_SEQUENCE, "the message has no ORC segment (no order)", "ORC")
        header = segments[:starts[0]]
        commands = []
        for start, end in zip(starts, [*starts[1:], len(segments)]):
            commands.append(self._command(Group(segments[start:end], header), patient))
        seen: dict[str, str] = {}
        for command in commands:
            if command.placer_number in seen:
                raise error(DUPLICATE_KEY, f"order {command.placer_number} appears twice in the message",
                            command.placer_where)
            seen[command.placer_number] = command.placer_where
        return commands

    def _value(self, name: str, group: Group) -> Value:
        expected = ""
        for loc in self.locations[name]:
            found = group.find(loc.segment)
            if found is None:
                continue
            value = _read_field(name, found, loc)
            if value.text:
                return value
            expected = expected or value.where
        return Value("", expected or str(self.locations[name][0]).split("-")[0])

    def _command(self, group: Group, patient: Callable[[], Patient]) -> OrderCommand:
        orc = group.own[0]
        control = orc.value(1).upper()
        if not control:
            raise error(REQUIRED_FIELD_MISSING, "the order control (ORC-1) is empty", orc.erl(1))
        if control not in CONTROLS:
            raise error(TABLE_VALUE_NOT_FOUND, f"order control {control!r} is not supported "
                        "(NW new, XO change, CA or DC cancel)", orc.erl(1))
        placer = self._required("placer_number", group, "placer order number")
        if CONTROLS[control] == "cancel":
            return OrderCommand(control, placer.text, placer.where, None)
        accession = self._required("accession_number", group, "accession number")
        v = {name: self._value(name, group) for name in self.locations}
        for name in _BOUNDED:
            check_length(v[name].text, _limit(name), name.replace("_", " "), v[name].where)
        procedure = v["procedure"].code
        for part, column in ((procedure.value, "procedure_code"), (procedure.scheme, "procedure_scheme"),
                             (procedure.meaning, "procedure_text")):
            check_length(part, _limit(column), "procedure", v["procedure"].where)
        order = Order(
            placer_number=placer.text, accession_number=accession.text, patient=patient(),
            filler_number=v["filler_number"].text, procedure=procedure, modality=v["modality"].text,
            body_part=v["body_part"].text,
            scheduled_at=timestamp(v["scheduled_at"].text, self.zone, v["scheduled_at"].where),
            station_ae=v["station_ae"].text, priority=priority(v["priority"].text, v["priority"].where),
            referring_physician=v["referring_physician"].text, reason=v["reason"].text,
            clinical_info=v["clinical_info"].text,
        )
        return OrderCommand(control, placer.text, placer.where, order, accession.where)

    def _required(self, name: str, group: Group, what: str) -> Value:
        value = self._value(name, group)
        if not value.text:
            tried = ", ".join(str(loc) for loc in self.locations[name])
            raise error(REQUIRED_FIELD_MISSING, f"the order has no {what} ({tried})", value.where)
        return value
