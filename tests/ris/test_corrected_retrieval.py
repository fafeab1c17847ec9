"""A corrected study leaves under its corrected identity by every retrieval door: after a
reconciliation and an A40 merge, DCMTK getscu and movescu (to a storescp) and WADO-RS receive
the surviving PatientID, PatientName and the linked AccessionNumber, with the stored pixel
data and every other element as stored; the stored files are never touched (G2), and a study
never corrected still leaves byte for byte as stored."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom import dcmread
from pydicom.uid import RLELossless

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.ris import Patient
from twinpacs.dimse import DimseServer
from twinpacs.synthetic import StudySpec
from twinpacs.web.api_ris import reconciliation
from tests.backend import backend_url
from tests.dimse.conftest import HOST, dataset_bytes, dcmtk, storescp  # noqa: F401 (a fixture)
from tests.ris.conftest import AE_TITLE, PROCEDURE_CODES, order, store, stored_state, study_files
from tests.served import ServedApp
from tests.web.conftest import parts_of

pytestmark = pytest.mark.anyio

PRIOR = Patient("OLD1", "HOSP", "Olsen^Ola", "19500505", "M")
SURVIVING = Patient("NEW1", "HOSP", "Olsen^Ola Petter", "19500505", "M")
# What every instance of a corrected study must carry when it leaves.
CORRECTED = {"PatientID": "NEW1", "IssuerOfPatientID": "HOSP", "PatientName": "Olsen^Ola Petter",
             "AccessionNumber": "ACC31"}
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture
def site(tmp_path: Path, storescp: tuple[str, int, Path]) -> Iterator[Site]:  # noqa: F811
    """The RIS suite's site, with the test's storescp as its C-MOVE destination."""
    ae_title, port, _ = storescp
    data_dir = tmp_path / "site"
    built = build_site(load_settings(overrides={
        "site": {"data_dir": data_dir, "ae_title": AE_TITLE, "name": "ris-test"},
        "database": {"url": backend_url(data_dir)},
        "dicom": {"port": 0, "move_destinations": {ae_title: f"{HOST}:{port}"}},
        "ris": {"procedure_codes": PROCEDURE_CODES},
    }))
    yield built
    built.close()


@pytest.fixture
def studies(site: Site, tmp_path: Path) -> dict[str, list[Path]]:
    """Under the prior ID: a study without accession (linked to its order by reconciliation),
    one in RLE Lossless (encapsulated pixel data); then the A40 merge into the surviving ID,
    which already has a study of its own that nothing corrects."""
    files = {
        "explicit": study_files(tmp_path / "explicit", StudySpec(seed=31, patient_id="explicit"), PatientID="OLD1",
                                PatientName="Olsen^Ola", AccessionNumber=""),
        "rle": study_files(tmp_path / "rle", StudySpec(seed=32, patient_id="rle", transfer_syntax=RLELossless),
                           PatientID="OLD1", IssuerOfPatientID="HOSP", PatientName="Olsen^Ola",
                           AccessionNumber="ACC31"),
        "plain": study_files(tmp_path / "plain", StudySpec(seed=33, patient_id="plain"), PatientID="NEW1",
                             IssuerOfPatientID="HOSP", PatientName="Olsen^Ola Petter", AccessionNumber="ACC33"),
    }
    for paths in files.values():
        store(site, paths)
    site.ris.register_patient(PRIOR)
    site.ris.register_patient(SURVIVING)
    site.ris.place_order(order("P31", "ACC31", PRIOR))
    reconciliation(site).apply(uid(files["explicit"]), "linked to its order", "admin.ada", accession_number="ACC31")
    site.ris.merge_patients(SURVIVING, "OLD1", "HOSP", message_id="MSG-A40-31")
    return files


def uid(files: list[Path]) -> str:
    return str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def by_sop(objects: list[bytes]) -> dict[str, bytes]:
    return {str(dcmread(io.BytesIO(o), stop_before_pixels=True).SOPInstanceUID): o for o in objects}


def received(folder: Path) -> dict[str, bytes]:
    return by_sop([p.read_bytes() for p in sorted(folder.iterdir())])


def of(files: list[Path], got: dict[str, bytes]) -> dict[str, bytes]:
    """What was received of these stored files."""
    wanted = by_sop([p.read_bytes() for p in files])
    return {sop: data for sop, data in got.items() if sop in wanted}


def assert_corrected(site: Site, got: dict[str, bytes], files: list[Path]) -> None:
    """Each object as stored, but for the study's corrected attributes as the index has them
    (those CORRECTED shows, and any demographics the order brought): compared element by
    element, pixel data included."""
    sent = by_sop([p.read_bytes() for p in files])
    assert sorted(got) == sorted(sent)
    overrides = site.index.study_overrides(uid(files))
    assert overrides
    for sop, data in got.items():
        ds, stored = dcmread(io.BytesIO(data)), dcmread(io.BytesIO(sent[sop]))
        assert {k: str(ds[k].value) for k in CORRECTED} == CORRECTED
        assert ds.PixelData == stored.PixelData
        for keyword, value in overrides.items():
            setattr(stored, keyword, value)
        assert ds == stored, sop
        assert ds.file_meta.TransferSyntaxUID == stored.file_meta.TransferSyntaxUID


def assert_as_stored(got: dict[str, bytes], files: list[Path]) -> None:
    sent = by_sop([p.read_bytes() for p in files])
    assert sorted(got) == sorted(sent)
    for sop, data in got.items():
        assert dataset_bytes(data) == dataset_bytes(sent[sop]), sop


def getscu(server: DimseServer, folder: Path, *keys: str, model: str = "-S", prefer: str = "+xe") -> dict[str, bytes]:
    folder.mkdir()
    dcmtk("getscu", model, prefer, "+B", "-aec", AE_TITLE, "-od", folder, *[a for k in keys for a in ("-k", k)],
          HOST, server.port)
    return received(folder)


def test_getscu_receives_the_corrected_identity(site: Site, server: DimseServer, studies: dict[str, list[Path]],
                                                 tmp_path: Path) -> None:
    before = stored_state(site)
    study = f"StudyInstanceUID={uid(studies['explicit'])}"
    assert_corrected(site, getscu(server, tmp_path / "got-study", "QueryRetrieveLevel=STUDY", study), studies["explicit"])
    rle = getscu(server, tmp_path / "got-rle", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={uid(studies['rle'])}",
                 prefer="+xr")
    assert_corrected(site, rle, studies["rle"])
    assert {str(dcmread(io.BytesIO(d)).file_meta.TransferSyntaxUID) for d in rle.values()} == {RLELossless}

    # By patient: the surviving ID brings the merged study corrected and its own as stored.
    patient = getscu(server, tmp_path / "got-patient", "QueryRetrieveLevel=PATIENT", "PatientID=NEW1", model="-P")
    assert len(patient) == 4  # the RLE study is not offered a context here (+xe)
    assert_as_stored(of(studies["plain"], patient), studies["plain"])
    assert_corrected(site, of(studies["explicit"], patient), studies["explicit"])
    assert stored_state(site) == before


def test_movescu_delivers_the_corrected_identity(site: Site, server: DimseServer, studies: dict[str, list[Path]],
                                                  storescp: tuple[str, int, Path], tmp_path: Path) -> None:  # noqa: F811
    ae_title, _, folder = storescp
    before = stored_state(site)
    result = dcmtk("movescu", "-v", "-P", "-aec", AE_TITLE, "-aem", ae_title, "-k", "QueryRetrieveLevel=PATIENT",
                   "-k", "PatientID=NEW1", HOST, server.port)
    assert "Received Final Move Response (Success)" in result.stderr
    got = received(folder)
    assert len(got) == 6
    assert_corrected(site, of(studies["explicit"], got), studies["explicit"])
    assert_corrected(site, of(studies["rle"], got), studies["rle"])
    assert_as_stored(of(studies["plain"], got), studies["plain"])
    assert stored_state(site) == before


async def wado(client: httpx.AsyncClient, path: str) -> dict[str, bytes]:
    response = await client.get(f"/dicom-web/studies/{path}", headers={"Accept": WADO_ACCEPT})
    assert response.status_code == 200, response.text
    return by_sop([data for _, data in parts_of(response)])


async def test_wado_rs_retrieves_the_corrected_identity(site: Site, client: httpx.AsyncClient,
                                                        studies: dict[str, list[Path]]) -> None:
    before = stored_state(site)
    for name in ("explicit", "rle"):
        assert_corrected(site, await wado(client, uid(studies[name])), studies[name])
    first = dcmread(studies["rle"][0], stop_before_pixels=True)
    series = await wado(client, f"{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}")
    assert_corrected(site, series, studies["rle"])
    instance = await wado(client, f"{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}"
                                  f"/instances/{first.SOPInstanceUID}")
    assert_corrected(site, instance, [p for p in studies["rle"] if dcmread(p).SOPInstanceUID == first.SOPInstanceUID])
    # Never corrected: the stored files whole, file meta included.
    plain = await wado(client, uid(studies["plain"]))
    assert plain == by_sop([p.read_bytes() for p in studies["plain"]])
    # A DICOMweb client over a real socket reads the corrected identity too.
    served = ServedApp(site)
    try:
        datasets = DICOMwebClient(f"{served.url}/dicom-web").retrieve_study(uid(studies["explicit"]))
    finally:
        served.stop()
    assert [(ds.PatientID, str(ds.PatientName), ds.AccessionNumber) for ds in datasets] == [
        ("NEW1", "Olsen^Ola Petter", "ACC31")] * 2
    assert stored_state(site) == before


async def test_each_part_declares_its_corrected_length(client: httpx.AsyncClient,
                                                       studies: dict[str, list[Path]]) -> None:
    """Content-Length of each part is the corrected object's, not the stored file's."""
    response = await client.get(f"/dicom-web/studies/{uid(studies['explicit'])}", headers={"Accept": WADO_ACCEPT})
    boundary = response.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
    sections = response.content.split(b"--" + boundary.encode())[1:-1]
    stored = {len(p.read_bytes()) for p in studies["explicit"]}
    assert len(sections) == 2
    for section in sections:
        head, body = section.split(b"\r\n\r\n", 1)
        (length,) = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"Content-Length")]
        assert body.endswith(b"\r\n") and len(body) - 2 == length and length not in stored
        assert dcmread(io.BytesIO(body[:-2])).PatientID == "NEW1"


async def test_an_unmerge_sends_the_stored_identity_again(site: Site, client: httpx.AsyncClient,
                                                          studies: dict[str, list[Path]]) -> None:
    (merge,) = reconciliation(site).merges()
    site.ris.reverse_merge(merge["id"], actor="admin.ada")
    got = await wado(client, uid(studies["rle"]))
    assert got == by_sop([p.read_bytes() for p in studies["rle"]])  # no correction left: as stored
    linked = await wado(client, uid(studies["explicit"]))  # the reconciliation stays
    assert {(dcmread(io.BytesIO(d)).PatientID, dcmread(io.BytesIO(d)).AccessionNumber) for d in linked.values()} == {
        ("OLD1", "ACC31")}
