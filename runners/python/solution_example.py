"""Example ThreadML solution: the slots the harness calls.

The harness imports this module and calls:

    build(ctx) -> model                       required; returns an UNFITTED model
    fit(model, train, valid, ctx) -> model    optional; default model.fit(train.X, train.y)
                                              (clustering: model.fit(train.X))
    predict(model, X) -> array                optional; default model.predict(X)

train and valid have .X (a pandas DataFrame of feature columns) and .y (a Series; None for
clustering). The test split is never given to the solution.

ctx carries: task, target, metric, seed, numeric_columns, categorical_columns, text_columns,
date_columns, n_clusters, positive_class, classes; and helpers:
    ctx.preprocessor(scale=False, encode="onehot")  unfitted ColumnTransformer for the features
                                                    (calendar features for date columns, which
                                                    arrive as ISO strings; TF-IDF for text
                                                    columns: its output is then sparse, which
                                                    tree ensembles cannot take)
    ctx.progress(stage, done=None, total=None)      progress event
    ctx.log(message)                                log event
    ctx.report(name, value)                         a claimed metric (checked by the harness)

For images, series and graphs the harness prepares X itself (variant_*.py): an "image" column of
arrays (ctx.image_size; ctx.preprocessor() is then the image feature extractor), features of the
history at each forecast origin (ctx.horizon, ctx.season_length, ctx.strategy), or node features
propagated over the graph (ctx.hops).

Anything printed goes to stderr; only the harness writes events. The fitted model is pickled, so
keep it free of lambdas and locally defined classes.
"""

from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline


def build(ctx):
    if ctx.task == "classification":
        model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=ctx.seed)
        pre = ctx.preprocessor(encode="ordinal")
    elif ctx.task == "regression":
        model = HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1, random_state=ctx.seed)
        pre = ctx.preprocessor(encode="ordinal")
    else:
        # distances need comparable scales
        model = KMeans(n_clusters=ctx.n_clusters or 3, n_init=10, random_state=ctx.seed)
        pre = ctx.preprocessor(scale=True)
    return Pipeline([("pre", pre), ("model", model)])


def fit(model, train, valid, ctx):
    ctx.progress("training", 0, 1)
    if train.y is None:
        model.fit(train.X)
    else:
        model.fit(train.X, train.y)
    ctx.progress("training", 1, 1)
    if valid.y is not None and ctx.task == "classification":
        ctx.report("accuracy", float((model.predict(valid.X) == valid.y.to_numpy()).mean()))
    return model


def predict(model, X):
    return model.predict(X)
