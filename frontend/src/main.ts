// The twinpacs image viewer: the current study on the left, its most relevant prior on the
// right (display protocol in the README), both read through the site's own DICOMweb.
import './viewer.css';
import { Enums, RenderingEngine, eventTarget, getShouldUseCPURendering, init as coreInit, setUseCPURendering } from '@cornerstonejs/core';
import { init as loaderInit, wadors } from '@cornerstonejs/dicom-image-loader';
import { Enums as ToolEnums, PanTool, StackScrollTool, ToolGroupManager, WindowLevelTool, ZoomTool, addTool,
         init as toolsInit } from '@cornerstonejs/tools';
import { RequestFailed, findPrior, loadStudy, type Series, type Study } from './dicomweb';
import { Pane, describe } from './pane';
import { CT_PRESETS, type Preset } from './presets';

const { MouseBindings, KeyboardBindings } = ToolEnums;

function register(study: Study): void {
  // The loader reads each image's attributes from here, so they must be in before setStack;
  // a multi-frame instance is registered once, under its first frame.
  for (const series of study.series) {
    for (const image of series.images) {
      if (image.frame === 1) wadors.metaDataManager.add(image.imageId, image.instance as never);
    }
  }
}

/** The prior's series shown first: the same description as the current one, else the same
 *  series number, else the same modality, else its first. */
function matchingSeries(prior: Study, current?: Series): Series | undefined {
  if (!current) return undefined;
  return prior.series.find((s) => s.description && s.description === current.description)
    ?? prior.series.find((s) => s.number !== undefined && s.number === current.number)
    ?? prior.series.find((s) => s.modality === current.modality);
}

function setUpTools(): NonNullable<ReturnType<typeof ToolGroupManager.createToolGroup>> {
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) addTool(tool);
  const group = ToolGroupManager.createToolGroup('twinpacs-viewer');
  if (!group) throw new Error('the tool group could not be created');
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) group.addTool(tool.toolName);
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [
    { mouseButton: MouseBindings.Auxiliary },
    { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift },
  ] });
  group.setToolActive(ZoomTool.toolName, { bindings: [
    { mouseButton: MouseBindings.Secondary },
    { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Ctrl },
  ] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  return group;
}

function button(parent: HTMLElement, label: string, title: string, action: () => void): void {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.title = title;
  b.addEventListener('click', action);
  parent.appendChild(b);
}

function showProblem(text: string): void {
  const bar = document.getElementById('viewer-problem');
  if (!bar) return;
  bar.textContent = text;
  bar.hidden = false;
}

/** Whether to draw on the CPU: when asked (?renderer=cpu|webgl), else when WebGL is missing or
 *  drawn in software (SwiftShader, llvmpipe: virtual desktops, machines without a GPU), where
 *  Cornerstone's CPU path shows a 2D stack sooner (bench/viewer_first_image.py). */
function preferCpu(): boolean {
  const asked = new URLSearchParams(window.location.search).get('renderer');
  if (asked === 'cpu' || asked === 'webgl') return asked === 'cpu';
  const gl = document.createElement('canvas').getContext('webgl2');
  if (!gl) return true;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
  gl.getExtension('WEBGL_lose_context')?.loseContext(); // a probe: give its context back at once
  return /swiftshader|llvmpipe|softpipe|software/i.test(renderer);
}

/** The metadata requests the page's inline script sent while this code loaded, by study UID. */
function startedRequests(): Record<string, Promise<Response>> {
  return (window as { twinpacsMetadata?: Record<string, Promise<Response>> }).twinpacsMetadata ?? {};
}

async function main(): Promise<void> {
  const root = document.getElementById('viewer');
  if (!root) throw new Error('the page has no #viewer element');
  const studyUid = root.dataset.study ?? '';
  const priorUid = root.dataset.prior ?? '';
  const seriesUid = root.dataset.series ?? ''; // the series to open first, if named
  const dicomweb = new URL(root.dataset.dicomweb ?? '/dicom-web', window.location.href).href.replace(/\/$/, '');
  const started = startedRequests();
  // Metadata first: it travels while Cornerstone starts. The prior's too, when it is named.
  const currentStudy = loadStudy(dicomweb, studyUid, started[studyUid]);
  const priorStudy = priorUid ? loadStudy(dicomweb, priorUid, started[priorUid]) : undefined;
  currentStudy.catch(() => undefined); // both reported below, in their panes
  priorStudy?.catch(() => undefined);

  // Two viewports: two WebGL contexts are enough (the default pool of 7 costs start-up time).
  coreInit({ rendering: { webGlContextCount: 2 }, debug: {} });
  if (preferCpu()) setUseCPURendering(true);
  loaderInit({ maxWebWorkers: Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 1)) });
  toolsInit();
  root.dataset.renderer = getShouldUseCPURendering() ? 'cpu' : 'webgl';

  document.getElementById('viewer-status')?.remove();
  const toolbar = document.createElement('div');
  toolbar.className = 'toolbar';
  toolbar.setAttribute('role', 'toolbar');
  toolbar.setAttribute('aria-label', 'Window/level presets and reset (applied to both studies)');
  const panes = document.createElement('div');
  panes.className = 'panes';
  root.append(toolbar, panes);

  const engine = new RenderingEngine('twinpacs-viewer');
  const tools = setUpTools();
  const current = new Pane('current', panes, engine, tools);
  const prior = new Pane('prior', panes, engine, tools);
  const both = [current, prior];
  let active: Pane = current;
  const activate = (pane: Pane) => {
    active = pane;
    for (const p of both) p.section.classList.toggle('active', p === pane);
  };
  activate(current);
  for (const pane of both) {
    pane.section.addEventListener('pointerdown', () => activate(pane));
    pane.section.addEventListener('focusin', () => activate(pane));
  }

  const applyPreset = (preset: Preset) => both.forEach((p) => p.applyPreset(preset));
  for (const preset of CT_PRESETS) {
    button(toolbar, `${preset.name} (${preset.key})`, `W ${preset.width} L ${preset.center}`, () => applyPreset(preset));
  }
  button(toolbar, 'Image W/L (0)', 'the window stored in the images', () => both.forEach((p) => p.resetWindow()));
  button(toolbar, 'Reset (R)', 'window/level from the images, zoom to fit, no pan', () => both.forEach((p) => p.reset()));
  const help = document.createElement('span');
  help.className = 'help';
  help.textContent = 'Wheel, ↑↓, PgUp/PgDn, Home/End or the slider: scroll · drag: window/level · '
    + 'right-drag or Ctrl+drag, +/−: zoom · middle-drag, Shift+drag or Shift+arrows: pan';
  toolbar.appendChild(help);

  document.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement;
    if (target.closest('select, input, textarea') || e.altKey || e.metaKey || e.ctrlKey) return;
    const preset = CT_PRESETS.find((p) => p.key === e.key);
    const pan = 20;
    const actions: Record<string, () => unknown> = {
      ArrowDown: () => (e.shiftKey ? active.panBy(0, pan) : active.step(1)),
      ArrowUp: () => (e.shiftKey ? active.panBy(0, -pan) : active.step(-1)),
      ArrowRight: () => (e.shiftKey ? active.panBy(pan, 0) : active.step(1)),
      ArrowLeft: () => (e.shiftKey ? active.panBy(-pan, 0) : active.step(-1)),
      PageDown: () => active.step(10),
      PageUp: () => active.step(-10),
      Home: () => active.goTo(0),
      End: () => active.goTo(Number.MAX_SAFE_INTEGER),
      '+': () => active.zoomBy(1.25),
      '=': () => active.zoomBy(1.25),
      '-': () => active.zoomBy(0.8),
      '0': () => both.forEach((p) => p.resetWindow()),
      r: () => both.forEach((p) => p.reset()),
      R: () => both.forEach((p) => p.reset()),
    };
    const action = preset ? () => applyPreset(preset) : actions[e.key];
    if (!action) return;
    e.preventDefault();
    void action();
  });

  eventTarget.addEventListener(Enums.Events.IMAGE_LOAD_ERROR, ((e: CustomEvent<{ imageId?: string; error?: unknown }>) => {
    const pane = both.find((p) => e.detail?.imageId && p.holds(e.detail.imageId));
    pane?.fail(`An image could not be loaded (${describe(e.detail?.error)})`);
  }) as EventListener);
  window.addEventListener('resize', () => engine.resize(true, true));

  let study: Study;
  try {
    study = await currentStudy;
  } catch (err) {
    current.fail(err instanceof RequestFailed ? err.message : `The study could not be shown (${describe(err)})`);
    prior.empty('No prior shown: the current study could not be loaded.');
    return;
  }
  register(study);
  document.title = `${study.patientName.replace(/\^/g, ' ')} ${study.date} · twinpacs viewer`;
  const shown = current.show(study, study.series.find((s) => s.uid === seriesUid));
  await Promise.all([shown, showPrior(prior, dicomweb, study, priorStudy, current.series)]);
}

async function showPrior(pane: Pane, dicomweb: string, current: Study, given: Promise<Study> | undefined,
                         currentSeries: Series | undefined): Promise<void> {
  try {
    let loading = given;
    if (!loading) {
      const uid = await findPrior(dicomweb, current);
      if (!uid) {
        const modalities = current.modalities.join('/') || 'imaging';
        pane.empty(`No prior study: this site holds no earlier ${modalities} study of patient ${current.patientId || '(no ID)'}.`);
        return;
      }
      loading = loadStudy(dicomweb, uid);
    }
    const prior = await loading;
    register(prior);
    await pane.show(prior, matchingSeries(prior, currentSeries));
  } catch (err) {
    pane.fail(err instanceof RequestFailed ? `Prior: ${err.message}` : `The prior could not be shown (${describe(err)})`);
  }
}

window.addEventListener('error', (e) => showProblem(`The viewer met an error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => showProblem(`The viewer met an error: ${describe(e.reason)}`));
main().catch((err) => showProblem(`The viewer could not start: ${describe(err)}`));
