package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// artifactsDir is where tests leave files for people to look at
// (bin/artifacts at the repository root, or $SGTUNE_ARTIFACTS).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SGTUNE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "bin", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLivePageInChromium opens `sgtune up --http` in headless Chromium while
// the study runs and checks, in the DOM, that the page shows the front and
// updates itself (no reload) as trials finish; it keeps a screenshot in
// bin/artifacts/live-page.png.
func TestLivePageInChromium(t *testing.T) {
	browser := startChromium(t, 1400, 2200)
	dir := t.TempDir()
	spec := writeFile(t, dir, "study.yaml", quickSpec("live", 40))
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, sgtuneBin, "up", "--sim", "--spec", spec, "--runners", "1", "--data-dir", filepath.Join(dir, "data"),
		"--output", filepath.Join(dir, "results.json"), "--listen", "127.0.0.1:0", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--quiet")
	var upErr strings.Builder
	up.Stderr = &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		_ = up.Wait()
	})
	eventually(t, time.Minute, "the page to answer", func() bool {
		resp, err := http.Get(base)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	browser.navigate(base + "?poll=300")
	// A trial running now is on the timeline before its outcome.
	browser.waitEval(ctx, 2*time.Minute, "a running trial on the timeline", `document.querySelectorAll("#timeline rect.bar.running").length > 0`)
	browser.waitEval(ctx, 2*time.Minute, "the front drawn with its table",
		`Number(document.body.dataset.front) > 0 && document.querySelectorAll("#plot-front circle.pt.front").length > 0 && document.querySelectorAll("#front-table tbody tr").length > 0`)
	var first int
	browser.eval(`window.__sgtuneLoaded = true; Number(document.body.dataset.benchmarked)`, &first)

	// The page updates itself: more trials appear without a reload.
	browser.waitEval(ctx, 3*time.Minute, "the page to show more benchmarked trials",
		fmt.Sprintf(`window.__sgtuneLoaded === true && window.sgtune.updates > 0 && Number(document.body.dataset.benchmarked) > %d`, first+2))

	var dom struct {
		FrontPoints, FrontRows, FrontCount, Points, Outside, Bars, Copy int
		Summary, Tip, Command                                           string
		HV, Causes, Effects                                             bool
	}
	browser.eval(`(function () {
		var plot = document.querySelector("#plot-front svg"), vb = plot.viewBox.baseVal;
		var box = {l: 70, r: vb.width - 20, t: 14, b: vb.height - 44}, outside = 0;
		var pts = plot.querySelectorAll("circle.pt:not(.baseline)");
		pts.forEach(function (c) {
			var x = +c.getAttribute("cx"), y = +c.getAttribute("cy");
			if (x < box.l || x > box.r || y < box.t || y > box.b) outside++;
		});
		var front = plot.querySelector("circle.pt.front");
		front.dispatchEvent(new MouseEvent("mouseenter", {bubbles: true}));
		front.dispatchEvent(new MouseEvent("mousemove", {bubbles: true, clientX: 200, clientY: 200}));
		var tip = document.getElementById("tip");
		var row = document.querySelector("#front-table tbody tr");
		return {
			FrontPoints: plot.querySelectorAll("circle.pt.front").length,
			FrontRows: document.querySelectorAll("#front-table tbody tr").length,
			FrontCount: Number(document.body.dataset.front),
			Points: pts.length, Outside: outside,
			Bars: document.querySelectorAll("#timeline rect.bar").length,
			Copy: document.querySelectorAll("#front-table button.copy").length,
			Summary: document.getElementById("summary").textContent,
			Tip: tip.hidden ? "" : tip.textContent,
			Command: row.querySelector("code.cmd").textContent,
			HV: !!document.querySelector("#plot-hv path.hvline"),
			Causes: document.getElementById("causes").textContent.length > 0,
			Effects: document.querySelectorAll("#effects .effect").length > 0,
		};
	})()`, &dom)
	browser.screenshot(filepath.Join(artifactsDir(t), "live-page.png"))

	if dom.FrontPoints != dom.FrontCount || dom.FrontRows != dom.FrontCount {
		t.Errorf("front: %d points, %d rows, data says %d", dom.FrontPoints, dom.FrontRows, dom.FrontCount)
	}
	if dom.Outside != 0 {
		t.Errorf("%d of %d points lie outside the axes", dom.Outside, dom.Points)
	}
	if !strings.HasPrefix(dom.Tip, "trial ") || !strings.Contains(dom.Tip, "differs from the defaults") || !strings.Contains(dom.Tip, "ttft") {
		t.Errorf("hover tip %q", dom.Tip)
	}
	if !strings.Contains(dom.Command, " sim --model-path ") || strings.Contains(dom.Command, "--port") || dom.Copy != dom.FrontRows {
		t.Errorf("launch command %q, %d copy buttons for %d rows", dom.Command, dom.Copy, dom.FrontRows)
	}
	if dom.Bars == 0 || !dom.HV || !dom.Causes || !dom.Effects {
		t.Errorf("timeline bars %d, hypervolume line %v, causes %v, effects %v", dom.Bars, dom.HV, dom.Causes, dom.Effects)
	}
	if !strings.Contains(dom.Summary, "benchmarked") {
		t.Errorf("summary %q", dom.Summary)
	}
	t.Logf("live page: %s; %d points, front of %d; screenshot in %s", dom.Summary, dom.Points, dom.FrontCount, filepath.Join(artifactsDir(t), "live-page.png"))
}

// TestCapacityCurvesInChromium runs the capacity preset (deploy/specs/
// capacity.yaml) with the live page and checks, in headless Chromium, the
// load-curves panel: each front member's p99 TTFT and TPOT against
// concurrency as lines inside the axes, the SLO bounds as dashed lines, the
// capacity marked; a screenshot goes to bin/artifacts/capacity-curves.png.
func TestCapacityCurvesInChromium(t *testing.T) {
	browser := startChromium(t, 1400, 2600)
	dir := t.TempDir()
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, sgtuneBin, "up", "--sim", "--gpus", "8", "--spec", filepath.Join("..", "deploy", "specs", "capacity.yaml"),
		"--n-trials", "6", "--runners", "2", "--startup-timeout", "60s", "--benchmark-timeout", "120s",
		"--data-dir", filepath.Join(dir, "data"), "--output", filepath.Join(dir, "results.json"),
		"--listen", "127.0.0.1:0", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--quiet")
	var upErr strings.Builder
	up.Stderr = &upErr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		_ = up.Wait()
	})
	eventually(t, time.Minute, "the page to answer", func() bool {
		resp, err := http.Get(base)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	browser.navigate(base + "?poll=300")
	browser.waitEval(ctx, 5*time.Minute, "the load curves of the front",
		`document.querySelectorAll("#panel-curves polyline.curve-line").length > 0 && document.querySelectorAll("#panel-curves line.slo").length === 2`)
	var dom struct {
		Members, Lines, Points, Outside, SLO, Capacity int
		Legend                                         string
	}
	browser.eval(`(function () {
		var outside = 0, points = 0;
		document.querySelectorAll("#panel-curves svg").forEach(function (s) {
			var vb = s.viewBox.baseVal, box = {l: 56, r: vb.width - 12, t: 14, b: vb.height - 40};
			s.querySelectorAll("circle.curve-point").forEach(function (c) {
				points++;
				var x = +c.getAttribute("cx"), y = +c.getAttribute("cy");
				if (x < box.l - 0.5 || x > box.r + 0.5 || y < box.t - 0.5 || y > box.b + 0.5) outside++;
			});
		});
		return {
			Members: window.sgtune.data.panels.curves.members.length,
			Lines: document.querySelectorAll("#panel-curves polyline.curve-line").length,
			Points: points, Outside: outside,
			SLO: document.querySelectorAll("#panel-curves line.slo").length,
			Capacity: document.querySelectorAll("#panel-curves line.capacity").length,
			Legend: document.querySelector("#panel-curves .legend").textContent,
		};
	})()`, &dom)
	browser.screenshot(filepath.Join(artifactsDir(t), "capacity-curves.png"))
	if dom.Members < 1 || dom.Lines < 2*dom.Members || dom.Points < 4*dom.Members || dom.Outside != 0 {
		t.Errorf("curves: %d members, %d lines, %d points (%d outside the axes)", dom.Members, dom.Lines, dom.Points, dom.Outside)
	}
	if dom.SLO != 2 || dom.Capacity < 2*dom.Members || !strings.Contains(dom.Legend, "capacity") || !strings.Contains(dom.Legend, "tok/s per GPU") {
		t.Errorf("%d SLO lines, %d capacity marks, legend %q", dom.SLO, dom.Capacity, dom.Legend)
	}
}
