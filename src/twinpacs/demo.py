"""`twinpacs demo`: two sites on this machine (A active on 11112/8080, B standby on
11113/8081), each a `twinpacs serve` process replicating to the other, with a few
synthetic studies loaded into A."""

from __future__ import annotations

import secrets
import signal
import sys
import time
from pathlib import Path

from .demo_orders import STATION, send_sample_orders
from .pair import LocalPair, PairSite

# The DCMTK tools' default calling AE titles, so that the commands printed below are admitted.
DEMO_AES = ("ECHOSCU", "FINDSCU", "STORESCU", "GETSCU", "MOVESCU")
SITES = (PairSite("A", "active", "TWINPACS_A", 11112, 8080, 2575, DEMO_AES),
         PairSite("B", "standby", "TWINPACS_B", 11113, 8081, 2576, DEMO_AES))


# The demo's accounts, at both sites; their passwords are new at every run and printed once.
ACCOUNTS = (("admin", "administrator"), ("radiologist", "radiologist"))


def run_demo(root: Path, studies: int = 3) -> None:
    pair = LocalPair(root, *SITES)
    passwords = {name: secrets.token_urlsafe(12) for name, _ in ACCOUNTS}
    for site in (pair.a, pair.b):
        for name, role in ACCOUNTS:
            pair.set_account(site, name, role, passwords[name])
    try:
        pair.start(pair.a)
        pair.start(pair.b)
        sent = pair.load_studies(pair.a, studies)
        print(f"demo: loaded {sent} synthetic instances ({studies} studies) into site A")
        orders = send_sample_orders(pair.a, pair.headers)
        print("demo: the sample RIS sent two orders to site A over HL7 (MLLP)")
        _print_guide(pair.a, pair.b, orders, pair.admin_token, passwords)
        signal.signal(signal.SIGTERM, _interrupt)
        while pair.running():
            time.sleep(0.5)
        print("demo: a site stopped on its own; stopping the other", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        pair.stop_all()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _print_guide(a: PairSite, b: PairSite, orders: dict[str, str], token: str, passwords: dict[str, str]) -> None:
    accounts = "\n".join(f"  {name:12} {passwords[name]:18} ({role})" for name, role in ACCOUNTS)
    auth = '-H "Authorization: Bearer $TWINPACS_TOKEN"'
    print(f"""
twinpacs demo is running; A replicates to B. Ctrl-C stops both sites.
  site A (active):  DICOM {a.ae_title}@127.0.0.1:{a.dicom_port}   {a.url}/   HL7 (MLLP) 127.0.0.1:{a.hl7_port}
  site B (standby): DICOM {b.ae_title}@127.0.0.1:{b.dicom_port}   {b.url}/   HL7 (MLLP) 127.0.0.1:{b.hl7_port}
Sign in to the pages (either site) with one of these accounts; the passwords are new at every run:
{accounts}
The API and DICOMweb want a token: this one acts as administrator at both sites (until Ctrl-C).
  export TWINPACS_TOKEN={token}
Try:
  .venv/bin/twinpacs sync status --url {a.url}
  .venv/bin/twinpacs failover plan --to B --url {a.url}
  .venv/bin/twinpacs audit --url {a.url} --against {b.url}
  echoscu -aec {a.ae_title} 127.0.0.1 {a.dicom_port}
  findscu -S -aec {a.ae_title} -k QueryRetrieveLevel=STUDY -k PatientName -k StudyInstanceUID 127.0.0.1 {a.dicom_port}
  storescu -aec {a.ae_title} 127.0.0.1 {a.dicom_port} some-file.dcm
  findscu -W -aec {a.ae_title} -k ScheduledProcedureStepSequence[0].ScheduledStationAETitle={STATION} \\
          -k PatientName -k AccessionNumber -k RequestedProcedurePriority 127.0.0.1 {a.dicom_port}
  curl {auth} {a.url}/api/studies/{orders["study"]}/referral
  curl {auth} {a.url}/api/orders
  .venv/bin/twinpacs reconcile list --url {a.url}
  curl {auth} {a.url}/api/figures
  curl {auth} {a.url}/metrics
""", flush=True)
