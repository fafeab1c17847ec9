"""Access trail entries as DICOM audit messages (PS3.15 A.5.1, the ATNA XML schema): for a
hospital's audit record repository, which reads these rather than twinpacs's own columns.

Coded values use the current schema's form (csd-code, codeSystemName, originalText). A trail
export holds many messages, so they are wrapped in one <AuditMessages> root element."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from .access_trail import Action, Outcome, TrailRecord

# action -> (EventID code, its meaning (DCM), EventActionCode: Create Read Update Delete Execute)
EVENTS: dict[Action, tuple[str, str, str]] = {
    "query": ("110112", "Query", "E"),
    "retrieve": ("110103", "DICOM Instances Accessed", "R"),
    "view": ("110103", "DICOM Instances Accessed", "R"),
    "export": ("110106", "Export", "R"),
    "store": ("110104", "DICOM Instances Transferred", "C"),
    "correction": ("110103", "DICOM Instances Accessed", "U"),
    "merge": ("110110", "Patient Record", "U"),
    "deletion": ("110103", "DICOM Instances Accessed", "D"),
    "failover": ("110100", "Application Activity", "E"),
    "configuration": ("110100", "Application Activity", "E"),
    "login": ("110114", "User Authentication", "E"),
    "logout": ("110114", "User Authentication", "E"),
}
# EventTypeCode where DCM has one that says more than the EventID
EVENT_TYPES: dict[str, tuple[str, str]] = {"login": ("110122", "Login"), "logout": ("110123", "Logout")}
# The query object's ID is a SOP Class UID; QIDO-RS is Study Root C-FIND's web form.
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
# 0 success, 4 minor failure (refused: nothing happened), 8 serious failure
OUTCOMES: dict[Outcome, str] = {"success": "0", "refused": "4", "failed": "8"}


def _code(parent: ET.Element, tag: str, code: str, system: str, text: str) -> None:
    ET.SubElement(parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": text})


def audit_message(record: TrailRecord) -> ET.Element:
    entry, principal = record.entry, record.entry.principal
    event_id, meaning, action_code = EVENTS[entry.action]
    message = ET.Element("AuditMessage")
    event = ET.SubElement(message, "EventIdentification", {
        "EventActionCode": action_code, "EventDateTime": record.at.isoformat(),
        "EventOutcomeIndicator": OUTCOMES[entry.outcome]})
    _code(event, "EventID", event_id, "DCM", meaning)
    if entry.action in EVENT_TYPES:
        type_code, type_meaning = EVENT_TYPES[entry.action]
        _code(event, "EventTypeCode", type_code, "DCM", type_meaning)
    if entry.outcome != "success" and entry.detail:
        ET.SubElement(event, "EventOutcomeDescription").text = entry.detail

    participant = ET.SubElement(message, "ActiveParticipant", {
        "UserID": principal.name, "UserName": f"{principal.kind}:{principal.name}", "UserIsRequestor": "true"})
    if principal.address:
        participant.set("NetworkAccessPointID", principal.address)
        participant.set("NetworkAccessPointTypeCode", "2")  # an IP address
    _code(participant, "RoleIDCode", principal.role, "twinpacs-role", principal.role)

    source = ET.SubElement(message, "AuditSourceIdentification",
                           {"AuditSourceID": record.site, "AuditEnterpriseSiteID": record.site})
    _code(source, "AuditSourceTypeCode", "4", "DCM", "Application Server")

    if entry.patient_id:
        patient = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": entry.patient_id, "ParticipantObjectTypeCode": "1",  # a person
            "ParticipantObjectTypeCodeRole": "1"})  # the patient
        _code(patient, "ParticipantObjectIDTypeCode", "2", "RFC-3881", "Patient Number")
    if entry.study_uid:
        study = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": entry.study_uid, "ParticipantObjectTypeCode": "2",  # a system object
            "ParticipantObjectTypeCodeRole": "3"})  # a report
        _code(study, "ParticipantObjectIDTypeCode", "110180", "DCM", "Study Instance UID")
    if entry.action == "query":
        query = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": STUDY_ROOT_FIND, "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "24"})  # a query
        _code(query, "ParticipantObjectIDTypeCode", "110181", "DCM", "SOP Class UID")
        ET.SubElement(query, "ParticipantObjectQuery").text = base64.b64encode(entry.detail.encode()).decode()
    return message


def audit_messages(records: list[TrailRecord]) -> bytes:
    """One XML document (UTF-8, with declaration) holding a message per record."""
    root = ET.Element("AuditMessages")
    root.extend(audit_message(r) for r in records)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
