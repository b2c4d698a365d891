//! The BiLSTM fast path: the recurrence as one hand-written loop.
//!
//! candle-nn's LSTM slices the input and issues about fifteen small tensor
//! ops per step; the arithmetic is a fraction of that. This loop does what
//! is left:
//! - the input projections of every step of every sequence in one product,
//!   before the recurrence;
//! - per step, only the recurrent product `W_hh · h` and the gate math,
//!   fused into one pass over buffers allocated once per run;
//! - a batch advances all its sequences together, longest first, so the
//!   recurrent weights are read once per step for the whole batch;
//! - the weights stay in f16, as stored in the model file: half the bytes
//!   to bring in, and since the stored values are f16 the arithmetic (in
//!   f32) is unchanged;
//! - both products use one kernel over one layout ([`Blocked`]): weights in
//!   blocks of 16 outputs, each block's columns one after another, read
//!   front to back in a few sequential streams the prefetcher follows, up
//!   to six input rows per pass so that each weight, loaded and widened
//!   once, feeds several FMAs. A general matrix product packs both operands
//!   at every call, which costs more than it saves at these shapes.
//!
//! `cargo bench --bench pipeline` measures the loop against candle-nn's
//! LSTM; the README's Speed section has the numbers.
//!
//! On x86-64 with AVX2, FMA and F16C (checked at run time) the kernel is
//! explicit SIMD; elsewhere a portable loop does the same sums.

use half::f16;

/// A batch of sequences stored one after another, longest first: at step
/// `s` the sequences still running are always a prefix of the batch.
pub(super) struct Packed {
    lengths: Vec<usize>,
    offsets: Vec<usize>,
    rows: usize,
}

impl Packed {
    /// `lengths` must be in non-increasing order.
    pub(super) fn new(lengths: Vec<usize>) -> Self {
        assert!(lengths.windows(2).all(|w| w[0] >= w[1]), "sequences must be sorted longest first");
        let mut offsets = Vec::with_capacity(lengths.len());
        let mut rows = 0;
        for &len in &lengths {
            offsets.push(rows);
            rows += len;
        }
        Self { lengths, offsets, rows }
    }

    /// Total steps of all sequences: the rows of every activation matrix.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// Where sequence `k` starts.
    pub(super) fn offset(&self, k: usize) -> usize {
        self.offsets[k]
    }

    pub(super) fn length(&self, k: usize) -> usize {
        self.lengths[k]
    }
}

/// Which kernel runs the products; chosen once, when the model loads.
/// Only [`Kernel::detect`] can choose the SIMD one: its field is private,
/// so no other code can claim CPU features that were not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kernel(Isa);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Portable,
    /// AVX2, FMA and F16C, checked at run time.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs for `hidden` units (the SIMD one
    /// works in passes of up to 64 outputs, so it needs the 4·`hidden`
    /// gates a multiple of 64).
    pub(super) fn detect(hidden: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        if hidden.is_multiple_of(16) && avx2::available() {
            return Kernel(Isa::Avx2);
        }
        let _ = hidden;
        Kernel(Isa::Portable)
    }

    /// `out[rows[k]] += W · x[k]` for each input row `k`: the outputs
    /// accumulate in place (rows of `w.outputs` values), in rows that need
    /// not be consecutive.
    fn product(self, w: &Blocked, x: &[f32], out: &mut [f32], rows: &[usize]) {
        assert!(x.len() >= rows.len() * w.inputs && rows.iter().all(|&r| (r + 1) * w.outputs <= out.len()));
        match self.0 {
            Isa::Portable => product_portable(w, x, out, rows),
            // SAFETY: only `detect` makes this kernel, after checking that
            // the CPU has the features and that the outputs fit its passes;
            // the assert above keeps every row in bounds.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { avx2::product(w, x, out, rows) },
        }
    }

    /// The LSTM cell for each running sequence `k`: `gates[rows[k]]` → new
    /// `c[k]` and `h[k]`.
    fn cell(self, gates: &[f32], rows: &[usize], c: &mut [f32], h: &mut [f32], hidden: usize) {
        match self.0 {
            Isa::Portable => cell(gates, rows, c, h, hidden),
            // SAFETY: only `detect` makes this kernel, after checking the
            // CPU's features; the code is the portable one, compiled for AVX2.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { avx2::cell(gates, rows, c, h, hidden) },
        }
    }
}

/// Outputs per block of a [`Blocked`] matrix: two AVX2 vectors.
const BLOCK: usize = 16;

/// A weight matrix (PyTorch's `outputs × inputs`, row-major) laid out for
/// the kernels, in f16: blocks of [`BLOCK`] outputs (the last padded with
/// zeros), each block input by input. Element `(b · inputs + j) · BLOCK + i`
/// is what input `j` adds to output `b · BLOCK + i`. Models are exported in
/// f16, so this loses nothing; weights stored in f32 are rounded to f16.
pub(super) struct Blocked {
    w: Vec<f16>,
    inputs: usize,
    outputs: usize,
}

impl Blocked {
    fn new(w: &[f32], outputs: usize) -> Self {
        let inputs = w.len() / outputs;
        let mut blocked = vec![f16::ZERO; outputs.div_ceil(BLOCK) * inputs * BLOCK];
        for (o, row) in w.chunks_exact(inputs).enumerate() {
            let (b, i) = (o / BLOCK, o % BLOCK);
            for (j, &v) in row.iter().enumerate() {
                blocked[(b * inputs + j) * BLOCK + i] = f16::from_f32(v);
            }
        }
        Self { w: blocked, inputs, outputs }
    }

    /// The weight from input `j` to output `o`.
    #[cfg(test)]
    fn get(&self, o: usize, j: usize) -> f32 {
        self.w[(o / BLOCK * self.inputs + j) * BLOCK + o % BLOCK].to_f32()
    }
}

/// One direction of one LSTM layer, laid out for the loop.
pub(super) struct LstmDirection {
    /// Input weights (4H × input; PyTorch's gate order: i, f, g, o).
    w_ih: Blocked,
    /// `b_ih + b_hh`, folded once.
    bias: Vec<f32>,
    /// Recurrent weights (4H × H).
    w_hh: Blocked,
    hidden: usize,
}

impl LstmDirection {
    /// From PyTorch's layout: `w_ih` 4H × input, `w_hh` 4H × H, row-major.
    pub(super) fn new(w_ih: &[f32], w_hh: &[f32], b_ih: &[f32], b_hh: &[f32], hidden: usize) -> Self {
        Self {
            w_ih: Blocked::new(w_ih, 4 * hidden),
            bias: b_ih.iter().zip(b_hh).map(|(a, b)| a + b).collect(),
            w_hh: Blocked::new(w_hh, 4 * hidden),
            hidden,
        }
    }

    pub(super) fn hidden(&self) -> usize {
        self.hidden
    }

    /// Runs this direction over `x` (rows × input, packed as `packed`);
    /// returns the hidden states (rows × H) in time order.
    pub(super) fn run(&self, x: &[f32], packed: &Packed, reverse: bool, kernel: Kernel) -> Vec<f32> {
        let h_dim = self.hidden;
        let rows = packed.rows();
        let mut gates_x = Vec::with_capacity(rows * 4 * h_dim);
        for _ in 0..rows {
            gates_x.extend_from_slice(&self.bias);
        }
        let all_rows: Vec<usize> = (0..rows).collect();
        kernel.product(&self.w_ih, x, &mut gates_x, &all_rows);

        let batch = packed.lengths.len();
        let mut h = vec![0f32; batch * h_dim];
        let mut c = vec![0f32; batch * h_dim];
        let mut out = vec![0f32; rows * h_dim];
        // The row of each running sequence at this step.
        let mut step_rows = Vec::with_capacity(batch);
        let mut running = batch;
        for s in 0..packed.lengths.first().copied().unwrap_or(0) {
            while packed.length(running - 1) <= s {
                running -= 1;
            }
            step_rows.clear();
            step_rows.extend((0..running).map(|k| packed.offset(k) + if reverse { packed.length(k) - 1 - s } else { s }));
            kernel.product(&self.w_hh, &h, &mut gates_x, &step_rows);
            kernel.cell(&gates_x, &step_rows, &mut c, &mut h, h_dim);
            for (k, &r) in step_rows.iter().enumerate() {
                out[r * h_dim..(r + 1) * h_dim].copy_from_slice(&h[k * h_dim..(k + 1) * h_dim]);
            }
        }
        out
    }
}

/// `out += x · w` for `x` rows × k and `w` k × n, all row-major: the output
/// layer, whose few outputs (the vocabulary) do not fill the kernel's passes.
pub(super) fn matmul_acc(x: &[f32], rows: usize, k: usize, w: &[f32], n: usize, out: &mut [f32]) {
    assert!(x.len() >= rows * k && w.len() == k * n && out.len() == rows * n);
    if rows == 0 {
        return;
    }
    // SAFETY: the assert above keeps every index the strides reach in bounds.
    unsafe {
        matrixmultiply::sgemm(rows, k, n, 1.0, x.as_ptr(), k as isize, 1, w.as_ptr(), n as isize, 1, 1.0, out.as_mut_ptr(), n as isize, 1);
    }
}

/// `m` (rows × cols, row-major) transposed.
pub(super) fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

fn product_portable(w: &Blocked, x: &[f32], out: &mut [f32], rows: &[usize]) {
    for (x, &r) in x.chunks_exact(w.inputs).zip(rows) {
        let out = &mut out[r * w.outputs..(r + 1) * w.outputs];
        for (block, weights) in out.chunks_mut(BLOCK).zip(w.w.chunks_exact(w.inputs * BLOCK)) {
            for (&xj, column) in x.iter().zip(weights.chunks_exact(BLOCK)) {
                for (o, w) in block.iter_mut().zip(column) {
                    *o += w.to_f32() * xj;
                }
            }
        }
    }
}

/// `e^x` to within 2e-7 relative, branch-free so that loops over it
/// vectorize: Cephes' `expf` (2^n · e^r with |r| ≤ ln 2 / 2, a degree-6
/// polynomial for e^r).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5;
    // 2^n from the bits of n + 1.5·2^23, whose low mantissa bits hold n: a
    // float-to-int cast would not vectorize (it halved the cell's speed).
    let two_n = f32::from_bits((n + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    (p * r * r + r + 1.0) * two_n
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    2.0 / (1.0 + exp(-2.0 * x)) - 1.0
}

#[inline(always)]
fn cell(gates: &[f32], rows: &[usize], c: &mut [f32], h: &mut [f32], hidden: usize) {
    let states = c.chunks_exact_mut(hidden).zip(h.chunks_exact_mut(hidden));
    for (&r, (c, h)) in rows.iter().zip(states) {
        let g = &gates[r * 4 * hidden..(r + 1) * 4 * hidden];
        let (i, rest) = g.split_at(hidden);
        let (f, rest) = rest.split_at(hidden);
        let (g, o) = rest.split_at(hidden);
        // Zipped iterators, not indices: no bounds checks, so the loop vectorizes.
        let gates = i.iter().zip(f).zip(g.iter().zip(o));
        for (((i, f), (g, o)), (c, h)) in gates.zip(c.iter_mut().zip(h.iter_mut())) {
            *c = sigmoid(*f) * *c + sigmoid(*i) * tanh(*g);
            *h = sigmoid(*o) * tanh(*c);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Blocked, BLOCK};

    /// Whether this CPU runs the functions below.
    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
    }

    /// `out[rows[k]] += W · x[k]`, up to six input rows at a time so that
    /// each weight, loaded and widened once, feeds several FMAs.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C ([`available`]); `x` holds
    /// `rows.len()` rows of `w.inputs` values and every `rows[k]` is a whole
    /// row of `w.outputs` values in `out`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn product(w: &Blocked, x: &[f32], out: &mut [f32], rows: &[usize]) {
        assert!(w.outputs.is_multiple_of(64), "the passes cover 64 outputs at a time");
        let n = rows.len();
        let mut k = 0;
        while k < n {
            // SAFETY: the caller's bounds hold for rows k..k+S, which each
            // pass stays within (S ≤ n - k).
            k += unsafe {
                match n - k {
                    1 => pass::<1, 8>(w, x, out, rows, k),
                    2 => pass::<2, 4>(w, x, out, rows, k),
                    3 => pass::<3, 4>(w, x, out, rows, k),
                    4 => pass::<4, 2>(w, x, out, rows, k),
                    5 => pass::<5, 2>(w, x, out, rows, k),
                    _ => pass::<6, 2>(w, x, out, rows, k),
                }
            };
        }
    }

    /// Input rows `k0..k0+S`, outputs in passes of `8·R` (S·R accumulators,
    /// at most 12 of the 16 vector registers; `R` even, so a pass covers
    /// `R/2` whole blocks, read as that many sequential streams); returns S.
    ///
    /// # Safety
    /// As for [`product`], for rows `k0..k0+S`; `8·R` divides `w.outputs`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn pass<const S: usize, const R: usize>(w: &Blocked, x: &[f32], out: &mut [f32], rows: &[usize], k0: usize) -> usize {
        let (inputs, outputs) = (w.inputs, w.outputs);
        debug_assert!(k0 + S <= rows.len() && x.len() >= (k0 + S) * inputs && outputs.is_multiple_of(8 * R));
        let wp = w.w.as_ptr().cast::<u16>();
        // SAFETY: row k0 of `x` starts inside it (the caller's bounds).
        let xp = unsafe { x.as_ptr().add(k0 * inputs) };
        // SAFETY: each `rows[k0 + s]` is a whole row of `out` (the caller's bounds).
        let op: [*mut f32; S] = std::array::from_fn(|s| unsafe { out.as_mut_ptr().add(rows[k0 + s] * outputs) });
        for r in (0..outputs).step_by(8 * R) {
            // Accumulators start from the outputs: vectors r + 8i, i < R, of
            // each row, inside it since r + 8R ≤ outputs.
            let mut acc = [[_mm256_setzero_ps(); R]; S];
            for (s, acc) in acc.iter_mut().enumerate() {
                for (i, a) in acc.iter_mut().enumerate() {
                    // SAFETY: 8 floats at r + 8i < outputs of a whole output row.
                    *a = unsafe { _mm256_loadu_ps(op[s].add(r + 8 * i)) };
                }
            }
            // Vector `i` of this pass: half `i % 2` of block `r / 16 + i / 2`.
            // SAFETY: block r/16 + i/2 is one of the outputs/16 blocks of `w`,
            // each `inputs * BLOCK` halves long.
            let streams: [*const u16; R] = std::array::from_fn(|i| unsafe { wp.add((r + BLOCK * (i / 2)) * inputs + 8 * (i % 2)) });
            for j in 0..inputs {
                let mut wv = [_mm256_setzero_ps(); R];
                for (v, stream) in wv.iter_mut().zip(&streams) {
                    // SAFETY: column j < inputs of the stream's block, 8 halves of its 16.
                    *v = unsafe { _mm256_cvtph_ps(_mm_loadu_si128(stream.add(j * BLOCK).cast())) };
                }
                for (s, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: value j < inputs of input row k0 + s, inside `x`.
                    let xj = _mm256_set1_ps(unsafe { *xp.add(s * inputs + j) });
                    for (a, v) in acc.iter_mut().zip(&wv) {
                        *a = _mm256_fmadd_ps(*v, xj, *a);
                    }
                }
            }
            for (s, acc) in acc.iter().enumerate() {
                for (i, a) in acc.iter().enumerate() {
                    // SAFETY: where the accumulator was loaded from.
                    unsafe { _mm256_storeu_ps(op[s].add(r + 8 * i), *a) };
                }
            }
        }
        S
    }

    /// The portable cell, compiled with AVX2 so that it vectorizes.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C ([`available`]).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn cell(gates: &[f32], rows: &[usize], c: &mut [f32], h: &mut [f32], hidden: usize) {
        super::cell(gates, rows, c, h, hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-scale, scale].
    fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (f32::from(u16::try_from(state >> 16).unwrap()) / 32768.0 - 1.0) * scale
            })
            .collect()
    }

    fn direction(input: usize, hidden: usize) -> LstmDirection {
        let g = 4 * hidden;
        let round = |v: Vec<f32>| v.into_iter().map(|x| f16::from_f32(x).to_f32()).collect::<Vec<_>>();
        LstmDirection::new(
            &round(values(g * input, 1, 0.3)),
            &round(values(g * hidden, 2, 0.3)),
            &values(g, 3, 0.1),
            &values(g, 4, 0.1),
            hidden,
        )
    }

    /// One sequence, one step at a time, in f64 with the standard library's
    /// functions: what the loop must compute.
    fn plain(d: &LstmDirection, x: &[f32], input: usize, reverse: bool) -> Vec<f32> {
        let hd = d.hidden;
        let steps = x.len() / input;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let (mut h, mut c) = (vec![0f64; hd], vec![0f64; hd]);
        let mut out = vec![0f32; steps * hd];
        for s in 0..steps {
            let t = if reverse { steps - 1 - s } else { s };
            let mut gates: Vec<f64> = d.bias.iter().map(|&b| f64::from(b)).collect();
            for (r, gate) in gates.iter_mut().enumerate() {
                *gate += (0..input).map(|i| f64::from(x[t * input + i]) * f64::from(d.w_ih.get(r, i))).sum::<f64>();
                *gate += (0..hd).map(|j| h[j] * f64::from(d.w_hh.get(r, j))).sum::<f64>();
            }
            for j in 0..hd {
                c[j] = sig(gates[hd + j]) * c[j] + sig(gates[j]) * gates[2 * hd + j].tanh();
                h[j] = sig(gates[3 * hd + j]) * c[j].tanh();
                out[t * hd + j] = h[j] as f32;
            }
        }
        out
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn fast_exp_is_within_2e_7_relative() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (got, want) = (f64::from(exp(x)), f64::from(x).exp());
            assert!(((got - want) / want).abs() < 2e-7, "exp({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn every_kernel_matches_plain_arithmetic_for_a_batch_of_uneven_lengths() {
        let (input, hidden) = (24, 32);
        let d = direction(input, hidden);
        // 9, 8, 7, 5, 4, 2 and 1 running: every block shape (1 to 6 sequences) runs.
        let lengths = vec![37, 30, 20, 20, 17, 9, 9, 5, 1];
        let packed = Packed::new(lengths.clone());
        let x = values(packed.rows() * input, 7, 1.5);
        let mut kernels = vec![Kernel(Isa::Portable)];
        #[cfg(target_arch = "x86_64")]
        if avx2::available() {
            // A CPU that has it must run it, or its speed goes unmeasured.
            assert_eq!(Kernel::detect(hidden), Kernel(Isa::Avx2));
            kernels.push(Kernel::detect(hidden));
        }
        for kernel in kernels {
            for reverse in [false, true] {
                let got = d.run(&x, &packed, reverse, kernel);
                for (k, &len) in lengths.iter().enumerate() {
                    let (from, to) = (packed.offset(k), packed.offset(k) + len);
                    let want = plain(&d, &x[from * input..to * input], input, reverse);
                    let diff = max_diff(&got[from * hidden..to * hidden], &want);
                    assert!(diff < 1e-5, "{kernel:?} reverse={reverse} sequence {k}: {diff}");
                }
            }
        }
    }

    #[test]
    fn hidden_sizes_off_the_simd_blocks_use_the_portable_kernel() {
        // 20 units: whole gate blocks, too few for the SIMD passes; 7: the
        // last gate block padded.
        for hidden in [20, 7] {
            assert_eq!(Kernel::detect(hidden), Kernel(Isa::Portable));
            let d = direction(8, hidden);
            let packed = Packed::new(vec![6]);
            let x = values(6 * 8, 9, 1.0);
            assert!(max_diff(&d.run(&x, &packed, false, Kernel::detect(hidden)), &plain(&d, &x, 8, false)) < 1e-5, "hidden {hidden}");
        }
    }
}
