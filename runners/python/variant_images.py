"""ThreadML harness variant: image classification.

Images come as a zip archive or a folder (spec `data`), labelled by CSV files naming each image and its
label, or by class-named subfolders. Each image is decoded with PIL, centre-cropped to a square and
resized to a small working size; the model sees a DataFrame with one column, "image", holding those
uint8 arrays. Feature extraction is part of the fitted model (ImageFeatures: downsampled pixels,
colour histograms and histograms of oriented gradients, in numpy), so the model server turns a posted
image into features exactly as training did. With PyTorch on the runner, SmallCNNClassifier trains a
small convolutional network on the pixels themselves (from scratch: the sandbox has no network).

spec["images"]:
    labels            [{"file": "data/labels.csv"} | {"member": "labels.csv"}, ...]; empty: class folders
    filename_column   the labels CSVs' column of image names (with the labels)
    size              working size in pixels (a multiple of 8, 16 to 128; default 32)
    max_images        images used at most (a stratified sample beyond it; default 50000)

Model server: POST /predict {"images": ["<base64 image>", ...]} (or {"rows": [{"image": "<base64>"}]})
-> {"predictions": [label, ...]}.
"""

import base64
import binascii
import io
import math
import os
import posixpath
import sys
import weakref

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

import harness as H
import variant_common as C

# What the harness fits on the rows this variant makes (checked against spec.json's task).
TASK = "classification"

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IMAGE_COLUMN = "image"
FOLDER_LABEL = "label"
MAX_PIXELS = 40_000_000
# A sample image larger than this is posted re-encoded (as a PNG of its working-size version).
SAMPLE_MAX_BYTES = 200_000
SIZES = (16, 24, 32, 40, 48, 56, 64, 96, 128)


# --------------------------------------------------------------------------- decoding


class ImageError(ValueError):
    pass


def decode_image(data, size):
    """RGB uint8 array (size, size, 3): transparency over white, centre crop, resize."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    resample = getattr(Image, "Resampling", Image).BILINEAR
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{w}x{h} pixels is over the limit of {MAX_PIXELS}")
            img.draft("RGB", (size * 2, size * 2))  # JPEG decodes at a reduced scale
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                background.alpha_composite(rgba)
                img = background
            img = img.convert("RGB")
            w, h = img.size
            side = min(w, h)
            left, top = (w - side) // 2, (h - side) // 2
            img = img.crop((left, top, left + side, top + side)).resize((size, size), resample, reducing_gap=2.0)
            return np.asarray(img, dtype=np.uint8).copy()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a readable image (an unknown or broken format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"not a readable image ({type(e).__name__}: {e})") from None


def encode_png(array):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def image_batch(X):
    """(n, size, size, 3) uint8 from the image column of a DataFrame, a Series or a list of arrays."""
    col = X[IMAGE_COLUMN] if hasattr(X, "columns") else X
    items = list(col)
    if not items:
        raise ValueError("no images to process")
    return np.stack([np.asarray(a, dtype=np.uint8) for a in items])


# --------------------------------------------------------------------------- features


def _grid_mean(x, grid):
    n, size = x.shape[0], x.shape[1]
    f = size // grid
    return x.reshape(n, grid, f, grid, f, *x.shape[3:]).mean(axis=(2, 4)).reshape(n, -1)


def _features(imgs, colour_pixels, gray_pixels, colour_bins, hue_bins, cells, orientations):
    n, size = imgs.shape[0], imgs.shape[1]
    x = imgs.astype(np.float32) / 255.0
    area = float(size * size)
    rows = np.arange(n)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    gray = 0.299 * r + 0.587 * g + 0.114 * b

    # 1. the picture itself, block-averaged: coarse colour and finer grey levels
    px = np.concatenate([_grid_mean(x, colour_pixels), _grid_mean(gray, gray_pixels)], axis=1)

    # 2. a histogram per colour channel
    idx = np.minimum((x * colour_bins).astype(np.int64), colour_bins - 1)
    flat = (rows[:, None, None, None] * 3 * colour_bins + np.arange(3) * colour_bins + idx).ravel()
    colour = np.bincount(flat, minlength=n * 3 * colour_bins).reshape(n, -1) / area

    # 3. hue histogram, weighted by saturation (grey pixels have no hue)
    mx, mn = x.max(axis=-1), x.min(axis=-1)
    d = mx - mn
    dd = np.maximum(d, 1e-6)
    hue = np.where(mx == r, ((g - b) / dd) % 6.0, np.where(mx == g, (b - r) / dd + 2.0, (r - g) / dd + 4.0)) / 6.0
    sat = np.where(mx > 0, d / np.maximum(mx, 1e-6), 0.0)
    hidx = np.minimum((hue * hue_bins).astype(np.int64), hue_bins - 1)
    hflat = (rows[:, None, None] * hue_bins + hidx).ravel()
    hues = np.bincount(hflat, weights=sat.ravel(), minlength=n * hue_bins).reshape(n, -1) / area

    # 4. histograms of oriented gradients per cell (soft-binned), normalised per image (L2-Hys)
    gy, gx = np.gradient(gray, axis=(1, 2))
    mag = np.hypot(gx, gy)
    pos = (np.rad2deg(np.arctan2(gy, gx)) % 180.0) / (180.0 / orientations) - 0.5
    lo = np.floor(pos)
    w_hi = pos - lo
    lo = lo.astype(np.int64) % orientations
    hi = (lo + 1) % orientations
    cell = size // cells
    cid = (np.arange(size) // cell)[:, None] * cells + (np.arange(size) // cell)[None, :]
    base = rows[:, None, None] * cells * cells * orientations + cid[None] * orientations
    total = n * cells * cells * orientations
    hog = np.bincount((base + lo).ravel(), weights=(mag * (1 - w_hi)).ravel(), minlength=total)
    hog += np.bincount((base + hi).ravel(), weights=(mag * w_hi).ravel(), minlength=total)
    hog = hog.reshape(n, -1)
    hog = hog / np.sqrt((hog**2).sum(axis=1, keepdims=True) + 1e-6)
    hog = np.minimum(hog, 0.2)
    hog = hog / np.sqrt((hog**2).sum(axis=1, keepdims=True) + 1e-6)

    return np.concatenate([px, colour, hues, hog], axis=1).astype(np.float32)


# Features of images already seen, keyed by the array's identity. The weak reference proves the entry
# belongs to that very array (ids are reused once an array is freed), so the cache cannot serve stale
# features; it only spares the search from recomputing the same images in every fold and trial.
_CACHE = {}
_CACHE_LIMIT = 300_000


def _cache_drop(key):
    return lambda _ref: _CACHE.pop(key, None)


class ImageFeatures(TransformerMixin, BaseEstimator):
    """Images (the "image" column of uint8 arrays) to feature vectors: the picture block-averaged to
    `colour_pixels` squared colour cells and `gray_pixels` squared grey cells, a histogram per colour
    channel, a saturation-weighted hue histogram, and histograms of oriented gradients on a `cells` x
    `cells` grid (292 numbers with the defaults). Stateless: fit learns nothing."""

    def __init__(self, colour_pixels=4, gray_pixels=8, colour_bins=8, hue_bins=12, cells=4, orientations=9):
        self.colour_pixels = colour_pixels
        self.gray_pixels = gray_pixels
        self.colour_bins = colour_bins
        self.hue_bins = hue_bins
        self.cells = cells
        self.orientations = orientations

    def fit(self, X, y=None):
        return self

    def _params(self):
        return (self.colour_pixels, self.gray_pixels, self.colour_bins, self.hue_bins, self.cells, self.orientations)

    def transform(self, X):
        col = X[IMAGE_COLUMN] if hasattr(X, "columns") else X
        arrays = list(col)
        if not arrays:
            raise ValueError("no images to process")
        size = np.asarray(arrays[0]).shape[0]
        for name, grid in (("colour_pixels", self.colour_pixels), ("gray_pixels", self.gray_pixels), ("cells", self.cells)):
            if grid < 2 or size % grid:
                raise ValueError(f"{name}={grid} must divide the image size {size}")
        params = self._params()
        out = [None] * len(arrays)
        missing = []
        for i, a in enumerate(arrays):
            hit = _CACHE.get(id(a))
            if hit is not None and hit[0]() is a and hit[1] == params:
                out[i] = hit[2]
            else:
                missing.append(i)
        for start in range(0, len(missing), 256):
            chunk = missing[start : start + 256]
            feats = _features(np.stack([np.asarray(arrays[i], dtype=np.uint8) for i in chunk]), *params)
            for i, row in zip(chunk, feats):
                out[i] = row
                a = arrays[i]
                if isinstance(a, np.ndarray) and len(_CACHE) < _CACHE_LIMIT:
                    _CACHE[id(a)] = (weakref.ref(a, _cache_drop(id(a))), params, row)
        return np.vstack(out)


# --------------------------------------------------------------------------- CNN (PyTorch)


def _torch():
    try:
        import torch
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"SmallCNNClassifier needs PyTorch; install it on the runner ({H.install_hint('torch')})",
            name="torch",
        ) from e
    return torch


def _network(torch, n_classes, width):
    nn = torch.nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(3, width),
        *block(width, width),
        nn.MaxPool2d(2),
        *block(width, 2 * width),
        *block(2 * width, 2 * width),
        nn.MaxPool2d(2),
        *block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(4 * width, n_classes),
    )


class SmallCNNClassifier(ClassifierMixin, BaseEstimator):
    """A small convolutional network (five 3x3 convolutions, batch norm, global pooling) trained from
    scratch with AdamW and a one-cycle schedule, with flips and small shifts as augmentation."""

    threadml_requires = ("torch",)

    def __init__(self, epochs=15, batch_size=64, learning_rate=0.003, width=32, weight_decay=0.0005, augment=True, device="auto", random_state=None):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.width = width
        self.weight_decay = weight_decay
        self.augment = augment
        self.device = device
        self.random_state = random_state

    def _device(self, torch):
        if self.device != "auto":
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _inputs(self, torch, X):
        x = torch.from_numpy(image_batch(X)).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean_).view(1, 3, 1, 1)
        std = torch.tensor(self.std_).view(1, 3, 1, 1)
        return (x - mean) / std

    def fit(self, X, y):
        torch = _torch()
        F = torch.nn.functional
        seed = 0 if self.random_state is None else int(self.random_state)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        raw = torch.from_numpy(image_batch(X)).permute(0, 3, 1, 2).float().div_(255.0)
        self.mean_ = raw.mean(dim=(0, 2, 3)).tolist()
        self.std_ = [max(s, 1e-3) for s in raw.std(dim=(0, 2, 3)).tolist()]
        x = self._inputs(torch, X)
        targets = torch.from_numpy(codes.astype(np.int64))
        device = self._device(torch)
        net = _network(torch, len(self.classes_), int(self.width)).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        n, bs = len(x), max(1, int(self.batch_size))
        steps = max(1, int(self.epochs) * math.ceil(n / bs))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.learning_rate, total_steps=steps)
        net.train()
        for _ in range(int(self.epochs)):
            order = rng.permutation(n)
            for start in range(0, n, bs):
                pick = torch.from_numpy(order[start : start + bs])
                xb, yb = x[pick], targets[pick]
                if self.augment:
                    flip = torch.from_numpy(rng.random(len(pick)) < 0.5)
                    xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
                    dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
                    xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
                xb, yb = xb.to(device), yb.to(device)
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(xb), yb)
                loss.backward()
                opt.step()
                sched.step()
        self.net_ = net.to("cpu").eval()
        return self

    def predict_proba(self, X):
        torch = _torch()
        net = self._net(torch)
        x = self._inputs(torch, X)
        out = []
        with torch.no_grad():
            for start in range(0, len(x), 256):
                out.append(torch.softmax(net(x[start : start + 256]), dim=1).numpy())
        return np.concatenate(out, axis=0)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _net(self, torch):
        if getattr(self, "net_", None) is None:
            net = _network(torch, len(self.classes_), int(self.width))
            net.load_state_dict(torch.load(io.BytesIO(self._weights), map_location="cpu"))
            self.net_ = net.eval()
        return self.net_

    # Pickled as weights only: no torch classes in the pickle, and loading works without a GPU.
    def __getstate__(self):
        state = dict(self.__dict__)
        net = state.pop("net_", None)
        if net is not None:
            torch = _torch()
            buf = io.BytesIO()
            torch.save(net.state_dict(), buf)
            state["_weights"] = buf.getvalue()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.net_ = None


# --------------------------------------------------------------------------- harness hooks


def normalise(spec, problems):
    conf = dict(spec["images"])
    conf["labels"] = list(conf.get("labels") or [])
    for item in conf["labels"]:
        if not isinstance(item, dict) or not (item.get("file") or item.get("member")):
            problems.append("images.labels entries name a 'file' or an archive 'member'")
    if conf["labels"] and not conf.get("filename_column"):
        problems.append("images.filename_column is needed with labels files")
    conf["size"] = int(conf.get("size") or 32)
    if conf["size"] not in SIZES:
        problems.append(f"images.size must be one of {', '.join(map(str, SIZES))}")
    conf["max_images"] = max(10, int(conf.get("max_images") or 50_000))
    spec["images"] = conf


class ImagesPrepared(H.Prepared):
    def preprocessor(self, scale=False, encode="onehot"):
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        features = ImageFeatures()
        if not scale:
            return features
        return Pipeline([("features", features), ("scale", StandardScaler())])


def _label_tables(run, spec, source):
    """The labels CSVs, concatenated, with the filename and label columns checked."""
    import pandas as pd

    conf, target = spec["images"], str(spec["target"]).strip()
    tables = []
    for item in conf["labels"]:
        if item.get("file"):
            df, where = H.read_csv(item["file"], item.get("delimiter") or ","), item["file"]
        else:
            entry = C.find_member(source, item["member"])
            df, where = C.read_csv_bytes(source.read(entry), entry.name, item.get("delimiter")), entry.name
        df.columns = [str(c).strip() for c in df.columns]
        for what, name in (("filename_column", conf["filename_column"]), ("Label column", target)):
            if name not in df.columns:
                raise H.HarnessError("value_error", H.missing_column_message(what, name, list(df.columns), where))
        tables.append(df[[conf["filename_column"], target]])
    return pd.concat(tables, ignore_index=True)


def _match(entries, names):
    """Image entry per name in a labels file: the exact path, else a unique path ending, else a
    unique base name."""
    by_name = {e.name: e for e in entries}
    by_tail, by_base = {}, {}
    for e in entries:
        parts = e.name.split("/")
        for k in range(1, len(parts)):
            by_tail.setdefault("/".join(parts[k:]), []).append(e)
        by_base.setdefault(parts[-1], []).append(e)
    out = []
    for raw in names:
        name = posixpath.normpath(str(raw).strip().replace("\\", "/"))
        hit = by_name.get(name)
        if hit is None:
            tails = by_tail.get(name) or by_base.get(posixpath.basename(name)) or []
            hit = tails[0] if len(tails) == 1 else None
        out.append(hit)
    return out


def _labels_as_values(run, labels):
    import pandas as pd

    y = pd.Series(labels)
    if pd.api.types.is_float_dtype(y.dtype) and np.all(np.mod(y.to_numpy(), 1) == 0):
        return y.astype("int64")
    if not (pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype)):
        return y.astype(str).str.strip()
    return y


def prepare(run, spec):
    import pandas as pd

    conf, seed = spec["images"], spec["seed"]
    if not H.module_available("PIL"):
        raise H.HarnessError("environment_error", f"Reading images needs Pillow, which {sys.executable} lacks (Debian: python3-pil; pip install pillow).")
    source = C.open_source(spec["data"])
    where = os.path.basename(spec["data"].rstrip("/"))
    entries = [e for e in source.entries() if posixpath.splitext(e.name)[1].lower() in IMAGE_EXTS]
    if not entries:
        raise H.HarnessError("value_error", f"{where} holds no images ({', '.join(sorted(IMAGE_EXTS))}).")
    if getattr(source, "links", 0):
        run.warn(f"{source.links} symbolic link(s) in {where} were not followed.")

    if conf["labels"]:
        table = _label_tables(run, spec, source)
        table = table[table[str(spec["target"]).strip()].notna()]
        matched = _match(entries, table[conf["filename_column"]].tolist())
        keep = [i for i, e in enumerate(matched) if e is not None]
        if len(keep) < len(table):
            run.warn(f"{len(table) - len(keep)} labelled file name(s) match no image in {where}; they are left out.")
        items = [matched[i] for i in keep]
        labels = _labels_as_values(run, table[str(spec["target"]).strip()].iloc[keep].tolist())
        seen = {e.name for e in items}
        unlabelled = sum(1 for e in entries if e.name not in seen)
        if unlabelled:
            run.warn(f"{unlabelled} image(s) in {where} have no label and are not used.")
        layout = "labels_csv"
    else:
        top = [e for e in entries if "/" not in e.name]
        if len(top) == len(entries):
            raise H.HarnessError(
                "value_error",
                f"The images in {where} have no labels: give a CSV of file names and labels, or put each class in its own folder.",
            )
        if top:
            run.warn(f"{len(top)} image(s) at the top of {where} are in no class folder; they are not used.")
        items = [e for e in entries if "/" in e.name]
        labels = pd.Series([e.name.split("/")[-2] for e in items])
        layout = "folders"
    if len(items) == 0:
        raise H.HarnessError("value_error", f"No labelled images were found in {where}.")

    # at most max_images (smoke runs: sample_rows), sampled per class so every class stays
    limit = min(conf["max_images"], int(spec.get("sample_rows") or conf["max_images"]))
    order = np.arange(len(items))
    if len(items) > limit:
        order = C.stratified_pick(labels.astype(str).to_numpy(), limit, seed)
        run.log(f"Using {len(order)} of {len(items)} labelled images.")

    size = conf["size"]
    arrays, kept, bad = [], [], []
    for n, i in enumerate(order):
        try:
            arrays.append(decode_image(source.read(items[i]), size))
            kept.append(i)
        except ImageError as e:
            bad.append(f"{items[i].name}: {e}")
        if n % 200 == 0:
            H.emit({"event": "progress", "stage": "decode", "done": n, "total": len(order)})
    if bad:
        run.warn(f"{len(bad)} image(s) could not be read and are left out (first: {bad[0]}).")
    if len(arrays) < 10:
        raise H.HarnessError("value_error", f"Only {len(arrays)} images of {where} could be read; at least 10 are needed.")

    p = ImagesPrepared()
    p.size = size
    p.source, p.entries = source, [items[i] for i in kept]
    p.X = pd.DataFrame({IMAGE_COLUMN: pd.Series(arrays, dtype=object)})
    p.y = labels.iloc[kept].reset_index(drop=True)
    p.classes = H.sorted_classes(p.y.unique())
    if len(p.classes) < 2:
        raise H.HarnessError("value_error", f"Every image has the label {p.classes[0]!r}; classification needs at least two classes.")
    p.numeric, p.categorical, p.text, p.features = [], [], [], [IMAGE_COLUMN]
    p.target, p.labels_col, p.labels = str(spec["target"]).strip(), None, None
    p.context = {"image_column": IMAGE_COLUMN, "image_size": size}
    p.details = {"images": len(arrays), "unreadable": len(bad), "size": size, "layout": layout, "classes": len(p.classes)}
    run.log(f"{len(arrays)} images of {len(p.classes)} classes, resized to {size}x{size}.")
    return p


def meta(prep):
    return {"image_size": prep.size, "image_column": IMAGE_COLUMN}


def save(run, spec, prep, out_dir):
    prep.source.close()
    return []


def sample(run, spec, prep, idx, model, predict_fn):
    """Test images posted as base64, answered as the server will answer them."""
    import pandas as pd

    source = C.open_source(spec["data"])
    try:
        encoded, names = [], []
        for i in idx:
            entry = prep.entries[i]
            data = source.read(entry)
            if len(data) > SAMPLE_MAX_BYTES:
                data = encode_png(prep.X[IMAGE_COLUMN].iloc[i])
            encoded.append(base64.b64encode(data).decode("ascii"))
            names.append(entry.name)
    finally:
        source.close()
    arrays = [decode_image(base64.b64decode(b), prep.size) for b in encoded]
    pred = H.predict_with(predict_fn, model, pd.DataFrame({IMAGE_COLUMN: pd.Series(arrays, dtype=object)}))
    return {"rows": [{"image": n} for n in names], "request": {"images": encoded}, "predictions": pred.tolist()}


# --------------------------------------------------------------------------- model server


def _payload_images(payload):
    if isinstance(payload, dict) and isinstance(payload.get("images"), list):
        return payload["images"]
    if isinstance(payload, dict) and isinstance(payload.get("rows"), list):
        out = []
        for i, r in enumerate(payload["rows"]):
            if not isinstance(r, dict) or IMAGE_COLUMN not in r:
                raise C.RequestError(f'row {i} has no "image" field')
            out.append(r[IMAGE_COLUMN])
        return out
    if isinstance(payload, dict) and isinstance(payload.get("image"), str):
        return [payload["image"]]
    raise C.RequestError('expected {"images": ["<base64 image>", ...]}')


def _b64(value, i):
    if not isinstance(value, str) or not value:
        raise C.RequestError(f"image {i} is not a base64 string")
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise C.RequestError(f"image {i} is not valid base64") from None


class Served:
    """The model server's side of this variant: decode posted images, predict labels."""

    def __init__(self, meta, model, predict_fn, out_dir=None):
        self.meta, self.model, self.predict_fn = meta, model, predict_fn
        self.size = int(meta.get("image_size") or 32)

    def health(self):
        return {"input": 'POST /predict {"images": ["<base64 PNG or JPEG>", ...]}', "image_size": self.size}

    def predict(self, payload):
        import pandas as pd

        arrays = []
        for i, value in enumerate(_payload_images(payload)):
            try:
                arrays.append(decode_image(_b64(value, i), self.size))
            except ImageError as e:
                raise C.RequestError(f"image {i}: {e}") from None
        if not arrays:
            return []
        X = pd.DataFrame({IMAGE_COLUMN: pd.Series(arrays, dtype=object)})
        pred = self.predict_fn(self.model, X) if self.predict_fn else self.model.predict(X)
        return np.asarray(pred).tolist()
