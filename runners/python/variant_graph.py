"""ThreadML harness variant: node classification.

The data is a table of nodes (spec `data`: an id column, feature columns and the label, which may be
empty for unlabelled nodes) and a table of edges (source and target node ids). Node features are
propagated over the normalised adjacency with self-loops, A_hat = D^-1/2 (A + I) D^-1/2, and the model
sees [X, A_hat X, A_hat^2 X, ...] side by side (SGC, a simplified graph convolution: a linear or tree
model on these columns is a graph model without message passing at training time). Every node takes
part in propagation (transductive), but only labelled nodes are split into train / validation / test,
stratified by label; no label ever enters the features. Edges are taken as undirected.

spec["graph"]:
    edges             the edges CSV (a workspace path), or the archive holding it
    edges_member      the edges CSV inside that archive (null for a plain file)
    nodes_member      the nodes CSV inside the archive `data` (null when `data` is a CSV)
    node_id_column, source_column, target_column
    hops              propagation steps, 1 to 4 (default 2)
    max_features      base features kept; a truncated SVD beyond it (default 512)

Model server: POST /predict {"nodes": ["id", ...]} -> {"predictions": [label, ...]}; a node that is not
in the graph: {"new_nodes": [{"features": {"col": value, ...}, "neighbors": ["id", ...]}]} (answered
after "nodes", in order).
"""

import math
import os
import pickle

import numpy as np

import harness as H
import variant_common as C

# What the harness fits on the rows this variant makes (checked against spec.json's task).
TASK = "classification"

MAX_CATEGORIES = 20
MAX_CATEGORICAL_UNIQUE = 100


def node_key(value):
    """Node ids as strings, as both tables and requests write them ("3" and 3.0 are the same node)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (np.floating,)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


class GraphFeatures:
    """Base node features (standardised numbers, one-hot categories, optionally reduced) and their
    propagation over the graph. Pickled beside the model for the server."""

    def __init__(self, hops, max_features, seed):
        self.hops = hops
        self.max_features = max_features
        self.seed = seed
        self.numeric, self.categorical = [], []
        self.medians, self.means, self.stds, self.categories = {}, {}, {}, {}
        self.svd = None
        self.constant = False  # no usable feature column: one constant feature stands in
        self.levels = None

    # ---- base features

    def fit_base(self, run, df, columns):
        import pandas as pd

        for c in columns:
            col = df[c]
            if pd.api.types.is_bool_dtype(col.dtype) or not pd.api.types.is_numeric_dtype(col.dtype):
                n_unique = col.nunique(dropna=True)
                if n_unique > MAX_CATEGORICAL_UNIQUE:
                    run.warn(f"Node column '{c}' has {n_unique} distinct values; it is left out of the features.")
                    continue
                self.categorical.append(c)
                counts = col.astype(str).value_counts()
                self.categories[c] = list(counts.index[:MAX_CATEGORIES])
            else:
                values = col.astype(float)
                self.numeric.append(c)
                median = float(values.median()) if values.notna().any() else 0.0
                filled = values.fillna(median)
                self.medians[c], self.means[c] = median, float(filled.mean())
                self.stds[c] = float(filled.std()) or 1.0

    def base_names(self):
        if self.constant:
            return ["constant"]
        if self.svd is not None:
            return [f"svd{i}" for i in range(self.svd.n_components)]
        return list(self.numeric) + [f"{c}={v}" for c in self.categorical for v in self.categories[c]]

    def base_matrix(self, df):
        parts = []
        for c in self.numeric:
            v = df[c].astype(float).fillna(self.medians[c]).to_numpy()
            parts.append(((v - self.means[c]) / self.stds[c])[:, None])
        for c in self.categorical:
            v = df[c].astype(str).to_numpy()
            parts.append(np.stack([(v == cat) for cat in self.categories[c]], axis=1).astype(float))
        if self.constant:
            return np.ones((len(df), 1))
        X = np.concatenate(parts, axis=1) if parts else np.zeros((len(df), 0))
        X = self.svd.transform(X) if self.svd is not None else X
        # stored and propagated at float32 precision, so the server recomputes exactly these values
        return X.astype(np.float32).astype(np.float64)

    # ---- graph

    def fit_graph(self, ids, sources, targets):
        from scipy import sparse

        self.ids = ids
        self.index = {k: i for i, k in enumerate(ids)}
        n = len(ids)
        loops = sources == targets  # the normalisation adds every node's own loop
        sources, targets = sources[~loops], targets[~loops]
        A = sparse.coo_matrix((np.ones(len(sources)), (sources, targets)), shape=(n, n)).tocsr()
        self.A = ((A + A.T) > 0).astype(np.float64).tocsr()
        self.degree = np.asarray(self.A.sum(axis=1)).ravel()

    def propagated(self, X0):
        """[X, A_hat X, ..., A_hat^hops X] as a list of matrices."""
        from scipy import sparse

        d = self.degree + 1.0
        inv = sparse.diags(1.0 / np.sqrt(d))
        A_hat = inv @ (self.A + sparse.identity(len(d), format="csr")) @ inv
        out = [X0]
        for _ in range(self.hops):
            out.append(A_hat @ out[-1])
        return out

    def names(self):
        base = self.base_names()
        cols = [f"x:{b}" for b in base]
        for k in range(1, self.hops + 1):
            cols += [f"h{k}:{b}" for b in base]
        return cols + ["log_degree"]

    def table(self, X0=None):
        """Every node's model input, in node order (float32, as the model saw it)."""
        from scipy import sparse

        if X0 is not None:
            # kept sparse when mostly zeros (bag-of-words features), so graph.pkl stays small
            dense32 = X0.astype(np.float32)
            self.X0 = sparse.csr_matrix(dense32) if np.count_nonzero(dense32) < 0.25 * dense32.size else dense32
        if self.levels is None or X0 is not None:
            base = self.X0.toarray() if sparse.issparse(self.X0) else self.X0
            self.levels = self.propagated(base.astype(np.float64))
        return np.concatenate(self.levels + [np.log1p(self.degree)[:, None]], axis=1).astype(np.float32)

    def new_node_row(self, features, neighbors):
        """The model input of a node that is not in the graph: its own features joined to existing
        nodes. The neighbours' propagated features are those of the graph without the new node (one
        node changes them very little), and their degrees count the new edge."""
        import pandas as pd

        row = {c: features.get(c) for c in self.numeric + self.categorical}
        for c in self.numeric:
            v = row[c]
            if v is not None and not isinstance(v, (int, float)):
                try:
                    row[c] = float(v)
                except (TypeError, ValueError):
                    raise C.RequestError(f"feature '{c}' expects a number, not {v!r}") from None
        df = pd.DataFrame([row], columns=self.numeric + self.categorical)
        for c in self.numeric:
            df[c] = df[c].astype(float)
        x = self.base_matrix(df)[0]
        idx = []
        for k in neighbors:
            key = node_key(k)
            if key not in self.index:
                raise C.RequestError(f"neighbor {k!r} is not a node of the graph")
            idx.append(self.index[key])
        d_new = 1.0 + len(idx)
        d_nb = self.degree[idx] + 2.0  # their self-loop and the new edge
        levels, own = [x], x
        for k in range(1, self.hops + 1):
            nb = self.levels[k - 1][idx]
            own = own / d_new + (nb / np.sqrt(d_new * d_nb)[:, None]).sum(axis=0) if idx else own / d_new
            levels.append(own)
        return np.concatenate(levels + [np.array([math.log1p(len(idx))])]).astype(np.float32)


# --------------------------------------------------------------------------- harness hooks


def normalise(spec, problems):
    conf = dict(spec["graph"])
    for key in ("edges", "node_id_column", "source_column", "target_column"):
        if not conf.get(key):
            problems.append(f"graph.{key} is required")
    conf["hops"] = int(conf.get("hops") or 2)
    if not 1 <= conf["hops"] <= 4:
        problems.append("graph.hops must be between 1 and 4")
    conf["max_features"] = max(8, int(conf.get("max_features") or 512))
    spec["graph"] = conf


class GraphPrepared(H.Prepared):
    pass


def _table(spec, path, member, sep, what):
    df = C.read_table(path, member, sep)
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise H.HarnessError("value_error", f"The {what} table {member or path} has no rows.")
    return df


def prepare(run, spec):
    import pandas as pd

    conf, seed = spec["graph"], spec["seed"]
    nodes = _table(spec, spec["data"], conf.get("nodes_member"), spec.get("delimiter") or ",", "nodes")
    edges = _table(spec, conf["edges"], conf.get("edges_member"), conf.get("edges_delimiter") or ",", "edges")
    where_nodes = conf.get("nodes_member") or spec["data"]
    where_edges = conf.get("edges_member") or conf["edges"]
    id_col, target = conf["node_id_column"], str(spec["target"]).strip()
    for what, name, df, where in (
        ("node_id_column", id_col, nodes, where_nodes),
        ("Target column", target, nodes, where_nodes),
        ("source_column", conf["source_column"], edges, where_edges),
        ("target_column", conf["target_column"], edges, where_edges),
    ):
        if name not in df.columns:
            raise H.HarnessError("value_error", H.missing_column_message(what, name, list(df.columns), where))
    for c in spec["drop_columns"]:
        if c not in nodes.columns:
            raise H.HarnessError("value_error", H.missing_column_message("drop_columns entry", c, list(nodes.columns), where_nodes))

    ids = [node_key(v) for v in nodes[id_col].tolist()]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise H.HarnessError("value_error", f"Node id {dup!r} appears twice in '{id_col}'; node ids must be unique.")
    index = {k: i for i, k in enumerate(ids)}
    src = [index.get(node_key(v)) for v in edges[conf["source_column"]].tolist()]
    dst = [index.get(node_key(v)) for v in edges[conf["target_column"]].tolist()]
    known = [i for i in range(len(src)) if src[i] is not None and dst[i] is not None]
    unknown = len(src) - len(known)
    if unknown:
        run.warn(f"{unknown} of {len(src)} edges name a node that is not in the nodes table; they are left out.")
    if not known:
        raise H.HarnessError("value_error", f"No edge of {where_edges} joins two nodes of {where_nodes}: check the id columns.")

    excluded = {id_col, target, *spec["drop_columns"]}
    feature_cols = [c for c in nodes.columns if c not in excluded]
    gf = GraphFeatures(conf["hops"], conf["max_features"], seed)
    gf.fit_base(run, nodes, feature_cols)
    X0 = gf.base_matrix(nodes)
    if X0.shape[1] > conf["max_features"]:
        from sklearn.decomposition import TruncatedSVD

        n_base = X0.shape[1]
        gf.svd = TruncatedSVD(n_components=conf["max_features"], random_state=seed).fit(X0)
        X0 = gf.base_matrix(nodes)
        run.warn(f"{n_base} node features were reduced by a truncated SVD to {conf['max_features']}.")
    if X0.shape[1] == 0:
        run.warn("The nodes have no usable feature columns; the model sees the graph's structure only.")
        gf.constant = True
        X0 = gf.base_matrix(nodes)
    gf.fit_graph(ids, np.array([src[i] for i in known]), np.array([dst[i] for i in known]))
    table = gf.table(X0)
    names = gf.names()

    labelled_mask = nodes[target].notna().to_numpy() & (nodes[target].astype(str).str.strip() != "").to_numpy()
    labelled = np.flatnonzero(labelled_mask)
    if len(labelled) < 10:
        raise H.HarnessError("value_error", f"Only {len(labelled)} nodes have a label in '{target}'; at least 10 are needed.")
    if spec.get("sample_rows") and int(spec["sample_rows"]) < len(labelled):
        labelled = labelled[C.stratified_pick(nodes[target].iloc[labelled].astype(str).to_numpy(), int(spec["sample_rows"]), seed)]
        run.log(f"Smoke run: {len(labelled)} labelled nodes.")

    y = nodes[target].iloc[labelled].reset_index(drop=True)
    if pd.api.types.is_float_dtype(y.dtype) and np.all(np.mod(y.to_numpy(), 1) == 0):
        y = y.astype("int64")
    elif not (pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype)):
        y = y.astype(str).str.strip()

    p = GraphPrepared()
    p.graph = gf
    p.node_ids = [ids[i] for i in labelled]
    p.X = pd.DataFrame(table[labelled], columns=names)
    p.y = y
    p.classes = H.sorted_classes(y.unique())
    if len(p.classes) < 2:
        raise H.HarnessError("value_error", f"Every labelled node has the label {p.classes[0]!r}; classification needs two classes.")
    p.numeric, p.categorical, p.text, p.features = names, [], [], names
    p.target, p.labels_col, p.labels = target, None, None
    n_edges = int(gf.A.nnz // 2)
    p.context = {"node_id_column": id_col, "hops": conf["hops"], "graph_nodes": len(ids)}
    p.details = {
        "nodes": len(ids),
        "edges": n_edges,
        "labelled": int(labelled_mask.sum()),
        "unlabelled": int(len(ids) - labelled_mask.sum()),
        "isolated": int((gf.degree == 0).sum()),
        "unknown_edges": unknown,
        "hops": conf["hops"],
        "base_features": len(gf.base_names()),
    }
    run.log(f"Graph of {len(ids)} nodes and {n_edges} edges; features propagated over {conf['hops']} hops.")
    return p


def meta(prep):
    return {"graph_file": "graph.pkl", "node_id_column": prep.context["node_id_column"], "hops": prep.graph.hops}


def save(run, spec, prep, out_dir):
    path = os.path.join(out_dir, "graph.pkl")
    gf = prep.graph
    levels = gf.levels
    gf.levels = None  # recomputed when loaded: the base features and the graph are enough
    try:
        with open(path, "wb") as f:
            pickle.dump(gf, f, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        gf.levels = levels
    return [path]


def sample(run, spec, prep, idx, model, predict_fn):
    served = Served({"graph_file": None}, model, predict_fn, graph=prep.graph)
    request = {"nodes": [prep.node_ids[i] for i in idx]}
    return {"rows": [{"node": n} for n in request["nodes"]], "request": request, "predictions": served.predict(request)}


# --------------------------------------------------------------------------- model server


class Served:
    """The model server's side: model inputs of every node, looked up by id."""

    def __init__(self, meta, model, predict_fn, out_dir=None, graph=None):
        if graph is None:
            with open(os.path.join(out_dir, meta.get("graph_file") or "graph.pkl"), "rb") as f:
                graph = pickle.load(f)
        self.graph, self.model, self.predict_fn = graph, model, predict_fn
        self.table = graph.table()
        self.columns = graph.names()

    def health(self):
        return {
            "input": 'POST /predict {"nodes": ["<node id>", ...]} or {"new_nodes": [{"features": {...}, "neighbors": ["<node id>", ...]}]}',
            "nodes": len(self.graph.ids),
        }

    def predict(self, payload):
        import pandas as pd

        if not isinstance(payload, dict) or not ("nodes" in payload or "new_nodes" in payload):
            raise C.RequestError('expected {"nodes": ["<node id>", ...]} and/or {"new_nodes": [{"features": {...}, "neighbors": [...]}]}')
        nodes, new = payload.get("nodes") or [], payload.get("new_nodes") or []
        if not isinstance(nodes, list) or not isinstance(new, list):
            raise C.RequestError('"nodes" and "new_nodes" must be lists')
        rows = []
        for k in nodes:
            i = self.graph.index.get(node_key(k)) if isinstance(k, (str, int, float)) else None
            if i is None:
                raise C.RequestError(f"{k!r} is not a node of the graph")
            rows.append(self.table[i])
        for j, item in enumerate(new):
            if not isinstance(item, dict) or not isinstance(item.get("features", {}), dict) or not isinstance(item.get("neighbors", []), list):
                raise C.RequestError(f'new_nodes[{j}] must be {{"features": {{...}}, "neighbors": [...]}}')
            rows.append(self.graph.new_node_row(item.get("features") or {}, item.get("neighbors") or []))
        if not rows:
            return []
        X = pd.DataFrame(np.vstack(rows), columns=self.columns)
        pred = self.predict_fn(self.model, X) if self.predict_fn else self.model.predict(X)
        return np.asarray(pred).tolist()
