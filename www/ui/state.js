// The page's state, shared by its modules (the data itself lives in the worker).

export const ui = {
  defaults: null,    // the library's defaults as the controls show them (protocol.js PageDefaults)
  classes: [],
  palette: null,
  current: null,     // the view of the image under review (protocol.js View)
  names: [],         // the stored results, run order
  review: [],        // what the image selector lists (the worker's plan.review)
  opening: null,     // the image being opened
  zoom: 1, panX: 0, panY: 0,
  bitmap: null,
  camCls: null, cam: null,
  boxStart: null, boxEnd: null,
  running: false,
  runPreset: null,   // the method of the results shown
  unexported: false, // results of an earlier visit not exported in this session
  intake: 0,         // file intakes (choices, drops) not yet answered by the worker
  plan: null,        // the worker's latest plan
  cancelFlag: null,  // SharedArrayBuffer shared with the worker (cross-origin isolated pages)
};
