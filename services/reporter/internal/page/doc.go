// Package page is the reporter's live page: what a person opens while a
// study runs (`sgtune up --http ADDR`, `sgtune front --serve ADDR`). It is
// pure: Build turns a study's results and spec into Data, the JSON the page
// draws, and Render writes the page itself, one HTML document with its
// script and style inline and the first Data embedded, so it works without
// a network (no CDN, as on a GPU host) and shows the study even before its
// script runs its first poll.
//
// The page polls data.json (ETag'd: an unchanged study costs a 304) and
// redraws in place: the front with hover details (trial, objectives, the
// parameters that differ from SGLang's defaults), the hypervolume after each
// benchmarked trial, a timeline of trials per runner GPU, failures and
// rejections by cause, per-parameter effects on each objective, and the
// front's members with their launch commands and a copy button.
//
// # Adding a panel
//
// Data.Panels carries extra sections by name (e.g. capacity curves): add a
// field to a struct of your own, put it in Panels under a key, and register a
// drawing function for that key in assets/live.js with
// sgtune.panel(key, title, function (el, value, data) {...}); the page gives
// every registered panel a card of its own and redraws it on each update.
package page
