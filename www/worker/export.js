// The outputs: report.json (written by the library) and the zip of the labels, read one image
// at a time from IndexedDB.

import { state, bytesOf, cleanUpAndThrow } from './state.js';
import { wasm } from './wasm.js';
import { librarySettings, settingsOf } from './settings.js';
import { storedData } from './results.js';
import { labelVolumes } from './medical.js';

/** report.json of the stored results (the fields `camsam refine` writes): the settings that
 *  produced the labels, the run's backend and issues. Its bytes. */
export function report() {
  const s = state.session || {};
  const results = [...state.results.values()];
  const m = state.metrics;
  return wasm.reportJson({
    // the run's method (the selector may show another one that has not run yet)
    settings: results.length ? settingsOf(results[0]) : librarySettings(), backend: s.backend || state.backend, classes: state.classes,
    images: results.map((r) => {
      const i = m ? m.images.find((x) => x.name === r.name) : null;
      return { name: r.name, width: r.width, height: r.height, method: r.mode, backend: r.backend, sam_masks: r.masks ?? null, edits: r.edits, miou_before: i ? i.before : null, miou_after: i ? i.after : null };
    }),
    metrics: m ? { before: m.before, after: m.after } : null,
    issues: (s.issues || []).map((i) => `${i.file}: ${i.reason}`),
    from_cams: results.some((r) => r.fromCams), everything: results.some((r) => r.everything),
  });
}

/** The zip of the stored results (labels, optional overlays, `<stem>.nii.gz` label volumes of
 *  the loaded NIfTI files, report.json): its bytes. */
export async function exportZip({ gray, overlays }) {
  const zip = new wasm.Zip();
  try {
    for (const meta of state.results.values()) {
      const data = await storedData(meta.name);
      const label = wasm.Label.fromIds(meta.width, meta.height, data.refined);
      try {
        zip.add(`${meta.name}.png`, label.toPng(!!gray));
        if (overlays) {
          const img = data.image ? await bytesOf(data.image) : undefined;
          zip.add(`overlays/${meta.name}.png`, wasm.overlayPng(label, img, data.imagePath || ''));
        }
      } finally { label.free(); }
    }
    // A loaded NIfTI with labelled slices: its label volume on its grid (unlabelled slices are
    // background), built by the library from the same labels as the PNGs.
    const labelOf = async (name) => (state.results.has(name) ? (await storedData(name)).refined : null);
    for (const v of await labelVolumes(labelOf)) zip.add(v.name, v.bytes);
    zip.add('report.json', report());
  } catch (err) {
    cleanUpAndThrow(err, () => zip.free());
  }
  return zip.finish();
}
