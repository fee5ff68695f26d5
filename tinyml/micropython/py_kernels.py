"""The int8 kernels of the pure-Python MicroPython runtime (`--target micropython-py`).

Each function mirrors the generic (non-DSP) C kernel of the same name in firmware/engine/
operation for operation, so the bytes equal the engine's and TFLite-Micro's. The code is
the subset of Python that MicroPython and CPython share: ints (MicroPython's are
arbitrary-precision, so 64-bit intermediates need no emulation), array('b') for int8 tensors,
no int.bit_length, no numpy. The code generator (py_module.py) copies the functions a model
needs, with their helpers, into the generated module, so the device needs nothing else.

Params `p` is a dict with the fields of the C params struct (firmware/engine/tm_*.h); int8
tensors are (buffer, offset) pairs, the buffer an array('b').
"""
# The functions carry no annotations: they are copied into modules that MicroPython compiles.
from struct import pack as _pack, unpack as _unpack


def _srdhm(a, b):
    # gemmlowp SaturatingRoundingDoublingHighMul (tm_srdhm)
    if a == -2147483648 and b == -2147483648:
        return 2147483647
    return (a * b + 1073741824) >> 31


def _rdbp(x, e):
    # gemmlowp RoundingDivideByPOT (tm_rdbp), 0 <= e <= 31
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


def _wrap32(x):
    # int32 wrap-around of a C shift left (tm_shift_left)
    return ((x + 2147483648) & 0xFFFFFFFF) - 2147483648


def _mbqm(x, multiplier, shift):
    # TFLite MultiplyByQuantizedMultiplier, double rounding (tm_multiply_by_quantized_multiplier)
    if shift > 0:
        return _srdhm(_wrap32(x << shift), multiplier)
    return _rdbp(_srdhm(x, multiplier), -shift)


def _sat_shift_left(x, e):
    threshold = (1 << (31 - e)) - 1
    if x > threshold:
        return 2147483647
    if x < -threshold:
        return -2147483648
    return _wrap32(x << e)


def conv_2d(p, x, xo, y, yo):
    batches = p['batches']; ih = p['input_h']; iw = p['input_w']; ic = p['input_c']
    oh = p['output_h']; ow = p['output_w']; occ = p['output_c']
    fh = p['filter_h']; fw = p['filter_w']; fc = p['filter_c']
    sh = p['stride_h']; sw = p['stride_w']; dh = p['dilation_h']; dw = p['dilation_w']
    ph = p['pad_h']; pw = p['pad_w']; ioff = p['input_offset']; ooff = p['output_offset']
    lo = p['act_min']; hi = p['act_max']
    w = p['filter']; bias = p['bias']; mult = p['multiplier']; shift = p['shift']
    per_group = occ // (ic // fc)
    row = fh * fw * fc
    o = yo
    for n in range(batches):
        xn = xo + n * ih * iw * ic
        for oy in range(oh):
            iy0 = oy * sh - ph
            for ox in range(ow):
                ix0 = ox * sw - pw
                taps = []  # (input index, filter offset) of each tap inside the image
                for ky in range(fh):
                    iy = iy0 + ky * dh
                    if 0 <= iy < ih:
                        for kx in range(fw):
                            ix = ix0 + kx * dw
                            if 0 <= ix < iw:
                                taps.append((xn + (iy * iw + ix) * ic, (ky * fw + kx) * fc))
                for oc in range(occ):
                    c0 = (oc // per_group) * fc
                    wb = oc * row
                    acc = 0
                    for xi, wi in taps:
                        xi += c0
                        wi += wb
                        for c in range(fc):
                            acc += w[wi + c] * (x[xi + c] + ioff)
                    if bias is not None:
                        acc += bias[oc]
                    v = _mbqm(acc, mult[oc], shift[oc]) + ooff
                    y[o] = lo if v < lo else (hi if v > hi else v)
                    o += 1


def depthwise_conv_2d(p, x, xo, y, yo):
    batches = p['batches']; ih = p['input_h']; iw = p['input_w']; ic = p['input_c']
    oh = p['output_h']; ow = p['output_w']; occ = p['output_c']; dm = p['depth_multiplier']
    fh = p['filter_h']; fw = p['filter_w']
    sh = p['stride_h']; sw = p['stride_w']; dh = p['dilation_h']; dw = p['dilation_w']
    ph = p['pad_h']; pw = p['pad_w']; ioff = p['input_offset']; ooff = p['output_offset']
    lo = p['act_min']; hi = p['act_max']
    w = p['filter']; bias = p['bias']; mult = p['multiplier']; shift = p['shift']
    o = yo
    for n in range(batches):
        xn = xo + n * ih * iw * ic
        for oy in range(oh):
            iy0 = oy * sh - ph
            for ox in range(ow):
                ix0 = ox * sw - pw
                taps = []  # (input pixel index, filter tap index) inside the image
                for ky in range(fh):
                    iy = iy0 + ky * dh
                    if 0 <= iy < ih:
                        for kx in range(fw):
                            ix = ix0 + kx * dw
                            if 0 <= ix < iw:
                                taps.append((xn + (iy * iw + ix) * ic, (ky * fw + kx) * occ))
                for icc in range(ic):
                    for m in range(dm):
                        oc = icc * dm + m
                        acc = 0
                        for xi, wi in taps:
                            acc += w[wi + oc] * (x[xi + icc] + ioff)
                        if bias is not None:
                            acc += bias[oc]
                        v = _mbqm(acc, mult[oc], shift[oc]) + ooff
                        y[o] = lo if v < lo else (hi if v > hi else v)
                        o += 1


def fully_connected(p, x, xo, y, yo):
    batches = p['batches']; depth = p['input_depth']; occ = p['output_depth']
    ioff = p['input_offset']; foff = p['filter_offset']; ooff = p['output_offset']
    lo = p['act_min']; hi = p['act_max']; per_channel = p['per_channel']
    w = p['filter']; bias = p['bias']; mult = p['multiplier']; shift = p['shift']
    o = yo
    for b in range(batches):
        xb = xo + b * depth
        xs = [x[xb + i] + ioff for i in range(depth)]
        for oc in range(occ):
            wb = oc * depth
            acc = 0
            if foff:
                for i in range(depth):
                    acc += (w[wb + i] + foff) * xs[i]
            else:
                for i in range(depth):
                    acc += w[wb + i] * xs[i]
            if bias is not None:
                acc += bias[oc]
            c = oc if per_channel else 0
            v = _mbqm(acc, mult[c], shift[c]) + ooff
            y[o] = lo if v < lo else (hi if v > hi else v)
            o += 1


def add(p, a, ao, b, bo, y, yo):
    o1 = p['input1_offset']; o2 = p['input2_offset']; ls = p['left_shift']
    m1 = p['input1_multiplier']; s1 = p['input1_shift']; m2 = p['input2_multiplier']; s2 = p['input2_shift']
    mo = p['output_multiplier']; so = p['output_shift']; ooff = p['output_offset']
    lo = p['activation_min']; hi = p['activation_max']
    d = p['dims']; sa = p['input1_strides']; sb = p['input2_strides']
    o = yo
    for i0 in range(d[0]):
        for i1 in range(d[1]):
            for i2 in range(d[2]):
                ra = ao + i0 * sa[0] + i1 * sa[1] + i2 * sa[2]
                rb = bo + i0 * sb[0] + i1 * sb[1] + i2 * sb[2]
                for i3 in range(d[3]):
                    va = _mbqm(_wrap32((a[ra + i3 * sa[3]] + o1) << ls), m1, s1)
                    vb = _mbqm(_wrap32((b[rb + i3 * sb[3]] + o2) << ls), m2, s2)
                    v = _mbqm(va + vb, mo, so) + ooff
                    y[o] = lo if v < lo else (hi if v > hi else v)
                    o += 1


def _pool_window(p, y0, x0):
    fy0 = -y0 if y0 < 0 else 0
    fy1 = p['input_h'] - y0
    if fy1 > p['filter_h']:
        fy1 = p['filter_h']
    fx0 = -x0 if x0 < 0 else 0
    fx1 = p['input_w'] - x0
    if fx1 > p['filter_w']:
        fx1 = p['filter_w']
    return fy0, fy1, fx0, fx1


def max_pool_2d(p, x, xo, y, yo):
    ih = p['input_h']; iw = p['input_w']; ch = p['channels']
    lo = p['activation_min']; hi = p['activation_max']
    o = yo
    for b in range(p['batches']):
        image = xo + b * ih * iw * ch
        for oy in range(p['output_h']):
            y0 = oy * p['stride_h'] - p['pad_h']
            for ox in range(p['output_w']):
                x0 = ox * p['stride_w'] - p['pad_w']
                fy0, fy1, fx0, fx1 = _pool_window(p, y0, x0)
                for c in range(ch):
                    best = -128
                    for fy in range(fy0, fy1):
                        r = image + ((y0 + fy) * iw + x0) * ch + c
                        for fx in range(fx0, fx1):
                            v = x[r + fx * ch]
                            if v > best:
                                best = v
                    y[o] = lo if best < lo else (hi if best > hi else best)
                    o += 1


def average_pool_2d(p, x, xo, y, yo):
    ih = p['input_h']; iw = p['input_w']; ch = p['channels']
    lo = p['activation_min']; hi = p['activation_max']
    o = yo
    for b in range(p['batches']):
        image = xo + b * ih * iw * ch
        for oy in range(p['output_h']):
            y0 = oy * p['stride_h'] - p['pad_h']
            for ox in range(p['output_w']):
                x0 = ox * p['stride_w'] - p['pad_w']
                fy0, fy1, fx0, fx1 = _pool_window(p, y0, x0)
                count = (fy1 - fy0) * (fx1 - fx0)
                for c in range(ch):
                    s = 0
                    for fy in range(fy0, fy1):
                        r = image + ((y0 + fy) * iw + x0) * ch + c
                        for fx in range(fx0, fx1):
                            s += x[r + fx * ch]
                    if count > 0:
                        # C division truncates toward zero
                        s = (s + count // 2) // count if s > 0 else -((-s + count // 2) // count)
                    y[o] = lo if s < lo else (hi if s > hi else s)
                    o += 1


def mean(p, x, xo, y, yo):
    d = p['dims']; red = p['reduce']
    offset = p['input_zero_point'] * p['count']
    m = p['multiplier']; sh = p['shift']; zp = p['output_zero_point']
    stride = [0, 0, 0, 1]
    for j in (3, 2, 1):
        stride[j - 1] = stride[j] * d[j]
    out_n = [1 if red[j] else d[j] for j in range(4)]
    red_n = [d[j] if red[j] else 1 for j in range(4)]
    o = yo
    for o0 in range(out_n[0]):
        for o1 in range(out_n[1]):
            for o2 in range(out_n[2]):
                for o3 in range(out_n[3]):
                    base = xo + o0 * stride[0] + o1 * stride[1] + o2 * stride[2] + o3
                    s = 0
                    for r0 in range(red_n[0]):
                        for r1 in range(red_n[1]):
                            for r2 in range(red_n[2]):
                                r = base + r0 * stride[0] + r1 * stride[1] + r2 * stride[2]
                                for r3 in range(red_n[3]):
                                    s += x[r + r3]
                    v = _mbqm(s - offset, m, sh) + zp
                    y[o] = -128 if v < -128 else (127 if v > 127 else v)
                    o += 1


def pad(p, x, xo, y, yo):
    d = p['input_dims']; before = p['pad_before']; after = p['pad_after']; value = p['pad_value']
    od = [before[j] + d[j] + after[j] for j in range(4)]
    o = yo
    for i0 in range(od[0]):
        in0 = i0 - before[0]
        inside0 = 0 <= in0 < d[0]
        for i1 in range(od[1]):
            in1 = i1 - before[1]
            inside1 = inside0 and 0 <= in1 < d[1]
            for i2 in range(od[2]):
                in2 = i2 - before[2]
                if inside1 and 0 <= in2 < d[2]:
                    r = xo + ((in0 * d[1] + in1) * d[2] + in2) * d[3]
                    for _ in range(before[3]):
                        y[o] = value
                        o += 1
                    for i in range(d[3]):
                        y[o] = x[r + i]
                        o += 1
                    for _ in range(after[3]):
                        y[o] = value
                        o += 1
                else:
                    for _ in range(od[3]):
                        y[o] = value
                        o += 1


def concatenation(p, inputs, y, yo):
    inner = p['inner']
    o = yo
    for outer in range(p['outer']):
        for k in range(p['num_inputs']):
            buf, off = inputs[k]
            n = inner[k]
            start = off + outer * n
            for i in range(n):
                y[o + i] = buf[start + i]
            o += n


def quantize(p, x, xo, y, yo):
    izp = p['input_zero_point']; ozp = p['output_zero_point']; m = p['multiplier']; sh = p['shift']
    for i in range(p['size']):
        v = _mbqm(x[xo + i] - izp, m, sh) + ozp
        y[yo + i] = -128 if v < -128 else (127 if v > 127 else v)


def _f32(v):
    # round a float to the nearest float32, as C's float arithmetic does
    return _unpack('<f', _pack('<f', v))[0]


def quantize_f32(p, x, xo, y, yo):
    # x: a list of floats (float32 values); x / scale in float32, rounded half away from zero
    scale = p['scale']; zp = p['zero_point']
    for i in range(p['size']):
        v = _f32(x[xo + i] / scale)
        if not (v > -1073741824.0):
            t = -1073741824
        elif v > 1073741824.0:
            t = 1073741824
        else:
            t = int(v)
            r = v - t
            if r >= 0.5:
                t += 1
            elif r <= -0.5:
                t -= 1
        t += zp
        y[yo + i] = -128 if t < -128 else (127 if t > 127 else t)


def dequantize(p, x, xo, y, yo):
    # y: a list of floats (float32 values)
    scale = p['scale']; zp = p['zero_point']
    for i in range(p['size']):
        y[yo + i] = _f32(scale * (x[xo + i] - zp))


def _exp_quarter(a):
    x = a + 268435456
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    tail = _rdbp(_srdhm(_rdbp(x4, 2) + x3, 715827883) + x2, 1)
    return 1895147668 + _srdhm(1895147668, x + tail)


_EXP_MINUS_POW2 = (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242)


def _exp_negative(a):
    residue = (a & 16777215) - 16777216
    rest = residue - a
    result = _exp_quarter(residue * 32)
    for k in range(7):
        if rest & (1 << (24 + k)):
            result = _srdhm(result, _EXP_MINUS_POW2[k])
    return 2147483647 if a == 0 else result


def _one_over_one_plus(a):
    half = (a + 2147483647 + 1) // 2
    x = 1515870810 + _srdhm(half, -1010580540)
    for _ in range(3):
        x += _sat_shift_left(_srdhm(x, (1 << 29) - _srdhm(half, x)), 2)
    return _sat_shift_left(x, 1)


def softmax(p, x, xo, y, yo):
    depth = p['depth']; m = p['input_multiplier']; ls = p['input_left_shift']; diff_min = p['diff_min']
    for r in range(p['rows']):
        base = xo + r * depth
        out = yo + r * depth
        top = -128
        for c in range(depth):
            if x[base + c] > top:
                top = x[base + c]
        exps = []
        s = 0
        for c in range(depth):
            diff = x[base + c] - top
            if diff >= diff_min:
                e = _exp_negative(_mbqm(diff, m, ls))
                s += _rdbp(e, 12)
            else:
                e = None
            exps.append(e)
        headroom = 0
        while headroom < 32 and not (s & (0x80000000 >> headroom)):
            headroom += 1
        bits_over_unit = 12 - headroom
        reciprocal = _one_over_one_plus(((s << headroom) & 0xFFFFFFFF) - 0x80000000)
        for c in range(depth):
            e = exps[c]
            if e is None:
                y[out + c] = -128
            else:
                v = _rdbp(_srdhm(reciprocal, e), bits_over_unit + 23) - 128
                y[out + c] = -128 if v < -128 else (127 if v > 127 else v)
