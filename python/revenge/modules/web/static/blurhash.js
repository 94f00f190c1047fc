// A BlurHash decoder (the published algorithm, https://blurha.sh), painting a small
// canvas that stands in for a poster until the image arrives.

const DIGITS =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(text) {
  let value = 0;
  for (const char of text) {
    const digit = DIGITS.indexOf(char);
    if (digit < 0) throw new Error("invalid blurhash");
    value = value * 83 + digit;
  }
  return value;
}

const toLinear = (v) => {
  v /= 255;
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
};
const toSrgb = (v) => {
  v = Math.max(0, Math.min(1, v));
  return Math.round((v <= 0.0031308 ? v * 12.92 : 1.055 * Math.pow(v, 1 / 2.4) - 0.055) * 255);
};
const signPow = (v, e) => Math.sign(v) * Math.pow(Math.abs(v), e);

export function decode(hash, width, height) {
  if (!hash || hash.length < 6) throw new Error("invalid blurhash");
  const size = decode83(hash[0]);
  const nx = (size % 9) + 1;
  const ny = Math.floor(size / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) throw new Error("invalid blurhash length");
  const maxValue = (decode83(hash[1]) + 1) / 166;
  const colors = [];
  const dc = decode83(hash.slice(2, 6));
  colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
  for (let i = 1; i < nx * ny; i++) {
    const value = decode83(hash.slice(4 + i * 2, 6 + i * 2));
    const q = (v) => signPow((v - 9) / 9, 2) * maxValue;
    colors.push([q(Math.floor(value / 361)), q(Math.floor(value / 19) % 19), q(value % 19)]);
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colors[i + j * nx];
          r += c[0] * basis;
          g += c[1] * basis;
          b += c[2] * basis;
        }
      }
      const p = 4 * (x + y * width);
      pixels[p] = toSrgb(r);
      pixels[p + 1] = toSrgb(g);
      pixels[p + 2] = toSrgb(b);
      pixels[p + 3] = 255;
    }
  }
  return pixels;
}

// A placeholder is a tiny bitmap file made here (no canvas: every canvas element is a
// compositor resource of its own, and 5,000 of them made scrolling the grid janky), shown as
// the poster's CSS background, which the browser scales smoothly and decodes off the main
// thread. Cached by hash; the least recently made go first, their URLs revoked.
const W = 8; // a blurhash has a handful of components: 8 x 12 pixels show them all
const H = 12;
const MAX_URLS = 800;
const urls = new Map(); // hash -> blob: URL

/** A 32-bit top-down BMP of ``pixels`` (RGBA, ``w`` x ``h``). */
function bitmap(pixels, w, h) {
  const header = 54;
  const out = new Uint8Array(header + w * h * 4);
  const view = new DataView(out.buffer);
  out[0] = 0x42; // "BM"
  out[1] = 0x4d;
  view.setUint32(2, out.length, true);
  view.setUint32(10, header, true);
  view.setUint32(14, 40, true); // BITMAPINFOHEADER
  view.setInt32(18, w, true);
  view.setInt32(22, -h, true); // negative: rows top to bottom
  view.setUint16(26, 1, true);
  view.setUint16(28, 32, true);
  view.setUint32(34, w * h * 4, true);
  for (let i = 0, o = header; i < w * h * 4; i += 4, o += 4) {
    out[o] = pixels[i + 2]; // BGRA
    out[o + 1] = pixels[i + 1];
    out[o + 2] = pixels[i];
    out[o + 3] = 255;
  }
  return new Blob([out], { type: "image/bmp" });
}

/** A ``blob:`` URL of an image painted from ``hash`` (null when missing or malformed). */
export function placeholderUrl(hash) {
  if (!hash) return null;
  let url = urls.get(hash);
  if (url) return url;
  try {
    url = URL.createObjectURL(bitmap(decode(hash, W, H), W, H));
  } catch {
    return null;
  }
  if (urls.size >= MAX_URLS) {
    const [oldest, old] = urls.entries().next().value;
    urls.delete(oldest);
    URL.revokeObjectURL(old); // a card already showing it keeps its decoded picture
  }
  urls.set(hash, url);
  return url;
}
