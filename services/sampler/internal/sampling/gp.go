package sampling

import (
	"math"
)

// gp is a Gaussian-process regression over index vectors (configurations),
// with a mixture of the categorical "overlap" kernel and its first-order
// additive counterpart
//
//	k(x, x') = (1-w) · exp(-Σ_j θ_j · δ_j(x_j, x'_j))
//	         +   w   · Σ_j u_j · (1 - δ_j(x_j, x'_j)) / Σ_j u_j,   u_j = 1 - exp(-θ_j)
//
// where δ_j is the codec's distance between two values of parameter j (1
// for any two distinct categorical values; the rank distance, in [0, 1], for
// numeric ones, so the model carries what it saw at tp 4 over to tp 8 more
// than to tp 1)
// on standardised outputs (unit signal variance, constant mean) plus a
// noise variance. θ_j is how much a change of parameter j decorrelates two
// configurations: automatic relevance determination, fitted by maximising
// the marginal likelihood times a log-normal prior, so parameters that do
// not matter get θ_j near zero and the model generalises across them. The
// additive part (weight w, fitted too) is what a surface made of
// per-parameter effects looks like (throughput ×1.06 for one flag, ×0.9 for
// another): it carries what one parameter's value did to configurations
// that differ in every other parameter, where the product kernel sees
// strangers.
type gp struct {
	dist   [][][]float64
	xs     [][]int
	theta  []float64
	w      float64 // additive share
	noise  float64
	mu, sc float64   // output standardisation
	l      []float64 // Cholesky factor of K + noise·I, row-major n×n
	alpha  []float64 // (K + noise·I)⁻¹ (y - mu)/sc
	n      int
	// tab[j][a][i] = θ_j · δ_j(a, xs[i][j]): the kernel's exponent between
	// value a of feature j and training point i, so predict adds rows
	// instead of comparing values.
	tab [][][]float64
	// tabA[j][a][i] = u_j · δ_j(a, xs[i][j]) / Σu: the additive part's
	// deficit.
	tabA [][][]float64
	u    []float64 // additive weights u_j
	usum float64
}

// Hyperparameter grid and prior.
var (
	thetaGrid = []float64{0.003, 0.01, 0.03, 0.08, 0.2, 0.5, 1.2, 3}
	noiseGrid = []float64{1e-4, 1e-3, 1e-2, 0.05}
	addGrid   = []float64{0, 0.25, 0.5, 0.75}
)

const (
	thetaPriorMean = -2.3 // log θ ~ N(log 0.1, 1.5²)
	thetaPriorSD   = 1.5
)

// fitGP fits a GP to (xs, ys). theta0 (nil: the prior's centre) starts the
// hyperparameter search; sweeps is the number of coordinate sweeps over the
// grid (0: keep theta0 and noise0).
func fitGP(xs [][]int, ys []float64, dist [][][]float64, theta0 []float64, noise0 float64, sweeps int) *gp {
	return fitGPw(xs, ys, dist, theta0, noise0, -1, sweeps)
}

// fitGPw is fitGP with the additive share w0 to start from (negative:
// addGrid[1]); w is searched over addGrid with the other hyperparameters.
func fitGPw(xs [][]int, ys []float64, dist [][][]float64, theta0 []float64, noise0, w0 float64, sweeps int) *gp {
	d := len(dist)
	n := len(xs)
	mu, sc := meanStd(ys)
	z := make([]float64, n)
	for i, y := range ys {
		z[i] = (y - mu) / sc
	}
	theta := make([]float64, d)
	if len(theta0) == d {
		copy(theta, theta0)
	} else {
		for j := range theta {
			theta[j] = math.Exp(thetaPriorMean)
		}
	}
	noise := noise0
	if noise <= 0 {
		noise = 1e-3
	}
	w := w0
	if w < 0 {
		w = addGrid[1]
	}
	// mism[i*n+k] lists the parameters where xs[i] and xs[k] differ, with
	// their distance.
	mism := make([][]pdist, n*n)
	for i := range n {
		for k := i + 1; k < n; k++ {
			var m []pdist
			for j := range d {
				if xs[i][j] != xs[k][j] {
					m = append(m, pdist{int16(j), dist[j][xs[i][j]][xs[k][j]]})
				}
			}
			mism[i*n+k] = m
		}
	}
	kmat := make([]float64, n*n)
	lbuf := make([]float64, n*n)
	score := func(th []float64, nv, w float64) float64 {
		buildK(kmat, mism, n, th, nv, w)
		copy(lbuf, kmat)
		if !cholesky(lbuf, n) {
			return math.Inf(-1)
		}
		a := cholSolve(lbuf, n, z)
		ll := 0.0
		for i := range n {
			ll -= 0.5*z[i]*a[i] + math.Log(lbuf[i*n+i])
		}
		for _, t := range th {
			u := (math.Log(t) - thetaPriorMean) / thetaPriorSD
			ll -= 0.5 * u * u
		}
		return ll
	}
	if n >= 3 {
		best := score(theta, noise, w)
		for range sweeps {
			for j := range d {
				cur := theta[j]
				for _, v := range thetaGrid {
					if v == cur {
						continue
					}
					theta[j] = v
					if s := score(theta, noise, w); s > best {
						best, cur = s, v
					}
				}
				theta[j] = cur
			}
			cur := noise
			for _, v := range noiseGrid {
				if s := score(theta, v, w); s > best {
					best, cur = s, v
				}
			}
			noise = cur
			cw := w
			for _, v := range addGrid {
				if s := score(theta, noise, v); s > best {
					best, cw = s, v
				}
			}
			w = cw
		}
	}
	g := &gp{dist: dist, xs: xs, theta: theta, w: w, noise: noise, mu: mu, sc: sc, n: n}
	buildK(kmat, mism, n, theta, noise, w)
	for !cholesky(kmat, n) {
		// Numerically singular: more jitter.
		noise *= 10
		g.noise = noise
		buildK(kmat, mism, n, theta, noise, w)
	}
	g.l = kmat
	g.alpha = cholSolve(kmat, n, z)
	u, usum := additiveWeights(theta)
	g.u, g.usum = u, usum
	g.tab, g.tabA = make([][][]float64, d), make([][][]float64, d)
	for j := range d {
		g.tab[j], g.tabA[j] = make([][]float64, len(dist[j])), make([][]float64, len(dist[j]))
		for a := range dist[j] {
			row, rowA := make([]float64, n), make([]float64, n)
			for i, x := range xs {
				row[i] = theta[j] * dist[j][a][x[j]]
				rowA[i] = u[j] * dist[j][a][x[j]] / usum
			}
			g.tab[j][a], g.tabA[j][a] = row, rowA
		}
	}
	return g
}

// additiveWeights are the additive part's weights u_j = 1 - exp(-θ_j) and
// their sum.
func additiveWeights(theta []float64) ([]float64, float64) {
	u := make([]float64, len(theta))
	sum := 0.0
	for j, t := range theta {
		u[j] = 1 - math.Exp(-t)
		sum += u[j]
	}
	return u, max(sum, 1e-12)
}

type pdist struct {
	j int16
	d float64
}

func buildK(k []float64, mism [][]pdist, n int, theta []float64, noise, w float64) {
	u, usum := additiveWeights(theta)
	for i := range n {
		k[i*n+i] = 1 + noise
		for j := i + 1; j < n; j++ {
			s, a := 0.0, 0.0
			for _, p := range mism[i*n+j] {
				s += theta[p.j] * p.d
				a += u[p.j] * p.d
			}
			v := (1-w)*math.Exp(-s) + w*(1-a/usum)
			k[i*n+j], k[j*n+i] = v, v
		}
	}
}

// predict returns the posterior mean and standard deviation at x, in the
// outputs' units. kbuf and vbuf are scratch space of length n (nil: allocate).
func (g *gp) predict(x []int, kbuf, vbuf []float64) (mean, sd float64) {
	n := g.n
	if kbuf == nil {
		kbuf = make([]float64, n)
		vbuf = make([]float64, n)
	}
	g.kernelRow(x, kbuf, vbuf)
	m := 0.0
	for i, e := range kbuf[:n] {
		m += e * g.alpha[i]
	}
	// v = L⁻¹ k; variance = 1 - |v|².
	vv := 0.0
	for i := range n {
		s := kbuf[i]
		row := g.l[i*n : i*n+i]
		for k, lv := range row {
			s -= lv * vbuf[k]
		}
		vbuf[i] = s / g.l[i*n+i]
		vv += vbuf[i] * vbuf[i]
	}
	variance := max(1-vv, 1e-12)
	return g.mu + g.sc*m, g.sc * math.Sqrt(variance)
}

// cholesky factors a symmetric positive-definite n×n matrix in place (lower
// triangle; the upper is zeroed). It reports false when a is not positive definite.
func cholesky(a []float64, n int) bool {
	for j := range n {
		s := a[j*n+j]
		for k := range j {
			s -= a[j*n+k] * a[j*n+k]
		}
		if s <= 0 || math.IsNaN(s) {
			return false
		}
		d := math.Sqrt(s)
		a[j*n+j] = d
		for i := j + 1; i < n; i++ {
			s := a[i*n+j]
			for k := range j {
				s -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = s / d
		}
		for k := j + 1; k < n; k++ {
			a[j*n+k] = 0
		}
	}
	return true
}

// cholSolve solves L Lᵀ x = b.
func cholSolve(l []float64, n int, b []float64) []float64 {
	y := make([]float64, n)
	for i := range n {
		s := b[i]
		for k := range i {
			s -= l[i*n+k] * y[k]
		}
		y[i] = s / l[i*n+i]
	}
	for i := n - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * y[k]
		}
		y[i] = s / l[i*n+i]
	}
	return y
}

func meanStd(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return 0, 1
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	sd = math.Sqrt(sd / float64(len(v)))
	if sd < 1e-12 {
		sd = 1
	}
	return mean, sd
}

// kern is the kernel between two feature vectors.
func (g *gp) kern(a, b []int) float64 {
	s, add := 0.0, 0.0
	for j, v := range a {
		if b[j] != v {
			d := g.dist[j][b[j]][v]
			s += g.theta[j] * d
			add += g.u[j] * d
		}
	}
	return (1-g.w)*math.Exp(-s) + g.w*(1-add/g.usum)
}

// predictScratch is scratch space for believers.predict.
type predictScratch struct{ kbuf, vbuf, c []float64 }

func newPredictScratch(n, p int) *predictScratch {
	return &predictScratch{kbuf: make([]float64, n), vbuf: make([]float64, n), c: make([]float64, p)}
}

// believers conditions a GP on trials in flight observed at its own
// predicted mean (the kriging believer): the posterior mean is unchanged,
// the variance near them shrinks, without refitting the GP:
//
//	var(x | D, P) = var(x | D) - c(x)ᵀ S⁻¹ c(x),
//	c(x)_i = cov(x, p_i | D),  S = cov(P, P | D) + noise·I.
type believers struct {
	g  *gp
	px [][]int
	vp [][]float64 // L⁻¹ k(D, p_i)
	ls []float64   // Cholesky factor of S
	z  []float64   // Ls⁻¹ r: the liars' residuals (nil: kriging believers)
}

func newBelievers(g *gp, px [][]int) *believers { return newLiars(g, px, 0) }

// newLiars conditions g on the trials in flight px observed at their
// posterior mean plus lie posterior standard deviations (standardised
// units; 0 is the kriging believer): a lie towards worse pulls the mean of
// configurations correlated with a trial in flight down with it, so a
// batch does not propose the same change on two near-identical heads.
func newLiars(g *gp, px [][]int, lie float64) *believers {
	b := &believers{g: g, px: px}
	n, np := g.n, len(px)
	if np == 0 {
		return b
	}
	kbuf := make([]float64, n)
	for _, p := range px {
		v := make([]float64, n)
		g.predict(p, kbuf, v)
		b.vp = append(b.vp, v)
	}
	s := make([]float64, np*np)
	for i := range np {
		for j := i; j < np; j++ {
			c := g.kern(px[i], px[j])
			for k := range n {
				c -= b.vp[i][k] * b.vp[j][k]
			}
			if i == j {
				c += g.noise
			}
			s[i*np+j], s[j*np+i] = c, c
		}
	}
	for jitter := g.noise; !cholesky(s, np); jitter *= 10 {
		// Numerically singular (pending trials at one spot): more jitter.
		for i := range np {
			for j := range np {
				c := g.kern(px[i], px[j])
				for k := range n {
					c -= b.vp[i][k] * b.vp[j][k]
				}
				if i == j {
					c += g.noise + jitter
				}
				s[i*np+j] = c
			}
		}
	}
	b.ls = s
	if lie != 0 {
		b.z = make([]float64, np)
		for i := range np {
			vv := 0.0
			for _, e := range b.vp[i] {
				vv += e * e
			}
			r := lie * math.Sqrt(max(1-vv, 1e-12))
			for k := range i {
				r -= s[i*np+k] * b.z[k]
			}
			b.z[i] = r / s[i*np+i]
		}
	}
	return b
}

// predict is the conditioned posterior mean and standard deviation at x.
func (b *believers) predict(x []int, sc *predictScratch) (mean, sd float64) {
	mean, sd = b.g.predict(x, sc.kbuf, sc.vbuf)
	np := len(b.px)
	if np == 0 {
		return mean, sd
	}
	variance := sd * sd / (b.g.sc * b.g.sc)
	for i, p := range b.px {
		c := b.g.kern(x, p)
		for k, v := range sc.vbuf {
			c -= v * b.vp[i][k]
		}
		// Forward substitution: w = Ls⁻¹ c, in place.
		row := b.ls[i*np : i*np+i]
		for k, l := range row {
			c -= l * sc.c[k]
		}
		sc.c[i] = c / b.ls[i*np+i]
		variance -= sc.c[i] * sc.c[i]
		if b.z != nil {
			mean += b.g.sc * sc.c[i] * b.z[i]
		}
	}
	return mean, b.g.sc * math.Sqrt(max(variance, 1e-12))
}

// mean is the posterior mean at x (predict without the variance); kbuf and
// abuf are scratch space of length n.
func (g *gp) mean(x []int, kbuf, abuf []float64) float64 {
	g.kernelRow(x, kbuf, abuf)
	m := 0.0
	for i, e := range kbuf[:g.n] {
		m += e * g.alpha[i]
	}
	return g.mu + g.sc*m
}

// kernelRow fills kbuf with k(x, xs[i]); abuf is scratch space (both of
// length n).
func (g *gp) kernelRow(x []int, kbuf, abuf []float64) {
	n := g.n
	kbuf, abuf = kbuf[:n], abuf[:n]
	clear(kbuf)
	clear(abuf)
	for j, v := range x {
		for i, e := range g.tab[j][v][:n] {
			kbuf[i] += e
		}
		for i, e := range g.tabA[j][v][:n] {
			abuf[i] += e
		}
	}
	for i, e := range kbuf {
		kbuf[i] = (1-g.w)*math.Exp(-e) + g.w*(1-abuf[i])
	}
}
