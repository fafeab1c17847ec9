// Reading studies through the site's own DICOMweb: WADO-RS metadata for the images and the
// overlay, QIDO-RS for the patient's other studies (the prior).

/** One attribute of a DICOM JSON data set (PS3.18 F.2). */
export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type DicomJson = Record<string, JsonAttribute>;

/** One image of a stack: a frame of an instance (every frame of a multi-frame object). */
export interface StackImage {
  imageId: string;
  instanceNumber: number | undefined;
  frame: number;
  frames: number;
  sopInstanceUid: string;
  instance: DicomJson;
}

export interface Series {
  uid: string;
  number: number | undefined;
  modality: string;
  description: string;
  images: StackImage[];
}

export interface Study {
  uid: string;
  patientName: string;
  patientId: string;
  birthDate: string;
  date: string;
  time: string;
  description: string;
  accession: string;
  modalities: string[];
  series: Series[];
}

export const TAG = {
  PatientName: '00100010',
  PatientID: '00100020',
  PatientBirthDate: '00100030',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  ModalitiesInStudy: '00080061',
  Modality: '00080060',
  StudyDescription: '00081030',
  SeriesDescription: '0008103E',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  SOPInstanceUID: '00080018',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  NumberOfFrames: '00280008',
} as const;

/** A request that failed, with a message a person can act on. */
export class RequestFailed extends Error {}

const ACCEPT_JSON = { Accept: 'application/dicom+json, application/json' };

/** JSON from `request` (a URL, or a fetch the page already started), or a RequestFailed that
 *  says what failed and why. */
export async function getJson(request: string | Promise<Response>, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await (typeof request === 'string' ? fetch(request, { headers: ACCEPT_JSON }) : request);
  } catch (err) {
    throw new RequestFailed(`${what}: the site did not answer (${String(err)})`);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = (await response.json()) as { error?: unknown };
      if (typeof body.error === 'string') detail = body.error; // twinpacs's one error shape
    } catch {
      // not JSON: the status text says enough
    }
    throw new RequestFailed(`${what}: HTTP ${response.status} ${detail}`);
  }
  return response.json();
}

export function values(item: DicomJson, tag: string): unknown[] {
  return item[tag]?.Value ?? [];
}

/** The first value as text; a person name as its alphabetic group. */
export function text(item: DicomJson, tag: string): string {
  const first = values(item, tag)[0];
  if (first === undefined || first === null) return '';
  if (typeof first === 'object') return String((first as { Alphabetic?: string }).Alphabetic ?? '');
  return String(first);
}

export function num(item: DicomJson, tag: string): number | undefined {
  const first = values(item, tag)[0];
  const n = typeof first === 'number' ? first : Number.parseFloat(String(first));
  return Number.isFinite(n) ? n : undefined;
}

const byNumberThenUid = <T>(num: (x: T) => number | undefined, uid: (x: T) => string) => (a: T, b: T) =>
  (num(a) ?? Infinity) - (num(b) ?? Infinity) || uid(a).localeCompare(uid(b));

/** A study's series and their stacks from its WADO-RS metadata (`started`: its request, if the
 *  page sent it already): series by number, instances by instance number, each frame an image
 *  of the stack. */
export async function loadStudy(dicomweb: string, studyUid: string, started?: Promise<Response>): Promise<Study> {
  const url = `${dicomweb}/studies/${encodeURIComponent(studyUid)}/metadata`;
  const instances = (await getJson(started ?? url, `Study ${studyUid}`)) as DicomJson[];
  if (!Array.isArray(instances) || instances.length === 0) {
    throw new RequestFailed(`Study ${studyUid}: this site holds no instance of it`);
  }
  const bySeries = new Map<string, DicomJson[]>();
  for (const instance of instances) {
    const uid = text(instance, TAG.SeriesInstanceUID);
    bySeries.set(uid, [...(bySeries.get(uid) ?? []), instance]);
  }
  const series: Series[] = [];
  for (const [uid, members] of bySeries) {
    members.sort(byNumberThenUid((i) => num(i, TAG.InstanceNumber), (i) => text(i, TAG.SOPInstanceUID)));
    const images: StackImage[] = [];
    for (const instance of members) {
      const sop = text(instance, TAG.SOPInstanceUID);
      const frames = Math.max(1, num(instance, TAG.NumberOfFrames) ?? 1);
      const base = `wadors:${dicomweb}/studies/${studyUid}/series/${uid}/instances/${sop}/frames/`;
      for (let frame = 1; frame <= frames; frame++) {
        images.push({ imageId: base + frame, instanceNumber: num(instance, TAG.InstanceNumber), frame, frames,
                      sopInstanceUid: sop, instance });
      }
    }
    const first = members[0];
    series.push({ uid, number: num(first, TAG.SeriesNumber), modality: text(first, TAG.Modality),
                  description: text(first, TAG.SeriesDescription), images });
  }
  series.sort(byNumberThenUid((s) => s.number, (s) => s.uid));
  const first = instances[0];
  return {
    uid: studyUid,
    patientName: text(first, TAG.PatientName),
    patientId: text(first, TAG.PatientID),
    birthDate: text(first, TAG.PatientBirthDate),
    date: text(first, TAG.StudyDate),
    time: text(first, TAG.StudyTime),
    description: text(first, TAG.StudyDescription),
    accession: text(first, TAG.AccessionNumber),
    modalities: [...new Set(series.map((s) => s.modality).filter(Boolean))],
    series,
  };
}

/** The display protocol's prior: the same patient's most recent other study held on this site
 *  that shares a modality with the current one and is not dated after it; undefined if none. */
export async function findPrior(dicomweb: string, current: Study): Promise<string | undefined> {
  if (!current.patientId) return undefined;
  const query = `PatientID=${encodeURIComponent(current.patientId)}&includefield=${TAG.ModalitiesInStudy}&limit=1000`;
  const found = (await getJson(`${dicomweb}/studies?${query}`, 'The search for a prior study')) as DicomJson[];
  const when = (s: DicomJson) => text(s, TAG.StudyDate) + text(s, TAG.StudyTime);
  const currentWhen = current.date + current.time;
  const candidates = found.filter((s) =>
    text(s, TAG.StudyInstanceUID) !== current.uid
    && text(s, TAG.PatientID) === current.patientId // QIDO matching may be wildcard or fuzzy
    && values(s, TAG.ModalitiesInStudy).some((m) => current.modalities.includes(String(m)))
    && when(s) <= currentWhen);
  candidates.sort((a, b) => when(b).localeCompare(when(a)));
  return candidates.length ? text(candidates[0], TAG.StudyInstanceUID) : undefined;
}
