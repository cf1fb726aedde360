// Settings: the library's defaults (wasm `defaultSettings()`, the one place they are written)
// as the page's controls show them, and the library's settings from the page's controls.

import { state } from './state.js';
import { wasm } from './wasm.js';

// The refiners of the method selector besides the SEPL presets.
export const REFINERS = ['cpm', 'pamr', 'crf', 'cpm+sepl'];
// Refiners that need no model.
export const MODEL_FREE = ['pamr', 'crf'];

/** The library's default settings as the page's controls (protocol.js PageDefaults). */
export function pageDefaults(d) {
  return {
    preset: d.method === 'sepl' ? d.sepl.preset : d.method,
    t1: d.sepl.t1,
    t2: d.sepl.t2,
    combine: d.sepl.combine,
    bg: d.cam.bg_threshold,
    pointsPerSide: d.generator.points_per_side,
    predIou: d.generator.pred_iou_thresh,
    stability: d.generator.stability_score_thresh,
  };
}

/** Read the library's defaults (once the wasm module is ready); the settings start from them. */
export function loadDefaults() {
  state.library = wasm.defaultSettings();
  state.defaults = pageDefaults(state.library);
  const { pointsPerSide, predIou, stability, ...settings } = state.defaults;
  state.settings = settings;
}

/** The number of classes: the class names', else the library's default. */
export const numClasses = () => state.classes.length || state.library.num_classes;

/** The refiner of the method selector: `sepl` for the SEPL presets, or one of REFINERS. */
export const method = () => (REFINERS.includes(state.settings.preset) ? state.settings.preset : 'sepl');

/**
 * The library's settings (camsam::refine::Settings; missing fields take the library's
 * defaults) from the page's controls: the method selector holds the SEPL presets and the other
 * refiners; a non-SEPL method that merges (cpm+sepl) uses the default preset.
 */
export function librarySettings() {
  const s = state.settings;
  const sepl = { t1: Number(s.t1), t2: Number(s.t2), combine: s.combine };
  if (!REFINERS.includes(s.preset)) sepl.preset = s.preset;
  return { method: method(), num_classes: numClasses(), cam: { bg_threshold: Number(s.bg) }, sepl, generator: state.amg || {} };
}

/** The settings for stored result `r`: the controls' (sliders, preset), with the method its run
 *  used (a different method in the selector needs a run before it applies). */
export const settingsOf = (r) => ({ ...librarySettings(), method: r.mode });

/** The library's settings for the page's controls `settings` (a sweep of the current view),
 *  without changing the stored ones. */
export function librarySettingsWith(settings) {
  const kept = state.settings;
  state.settings = { ...kept, ...(settings || {}) };
  try { return librarySettings(); } finally { state.settings = kept; }
}
