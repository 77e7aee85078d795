import { describe, expect, it } from "vitest";
import { parseRequest } from "../../graphs/automl/request/parse.js";

const BANANA_COLS = ["Size", "Weight", "Sweetness", "Softness", "HarvestTime", "Ripeness", "Acidity", "Quality"];

describe("classify <column>", () => {
  it("reads an exact column name after classify as the target", () => {
    expect(parseRequest("Classify Quality in semicolon.csv", ["Size", "Quality"]).target).toBe("Quality");
    expect(parseRequest("Classify patients in data.csv", ["age", "outcome"]).target).toBeNull();
  });
});

describe("parseRequest: seed prompts, constraint-free (AutoML-Agent Table 3)", () => {
  it("banana quality", () => {
    const r = parseRequest(
      "Build a model to classify banana quality as Good or Bad based on their numerical information about bananas of different quality (size, weight, sweetness, softness, harvest time, ripeness, and acidity). We have uploaded the entire dataset for you here in the banana_quality.csv file.",
      BANANA_COLS,
    );
    expect(r.relevant).toBe(true);
    expect(r.intent).toBe("build");
    expect(r.task).toBe("classification");
    expect(r.target).toBe("Quality");
    expect(r.dataPaths).toEqual(["banana_quality.csv"]);
    expect(r.domain).toBe("agriculture");
    expect(r.constraints).toEqual([]);
  });

  it("banana quality without columns keeps the written words", () => {
    const r = parseRequest("Build a model to classify banana quality as Good or Bad. The data is in banana_quality.csv.");
    expect(r.target).toBe("banana quality");
  });

  it("software defects", () => {
    const r = parseRequest(
      "You are solving this data science tasks of binary classification: The dataset presented here (the Software Defects Dataset) comprises a lot of numerical features. Please split the dataset into three parts of train, valid and test. Your task is to predict the defects item, which is a binary label with 0 and 1. The evaluation metric is the F1 score. Please train a binary classification model to get a good performance on this task.",
      ["loc", "v(g)", "ev(g)", "iv(g)", "n", "v", "l", "d", "i", "e", "b", "t", "defects"],
    );
    expect(r.intent).toBe("build");
    expect(r.task).toBe("classification");
    expect(r.target).toBe("defects");
    expect(r.metric).toBe("f1");
    expect(r.domain).toBe("software engineering");
  });

  it("crab age", () => {
    const r = parseRequest(
      "You are solving this data science tasks of regression: The dataset presented here (the Crab Age Dataset) comprises a lot of both categorical and numerical features. Please split the dataset into three parts of train, valid and test. Your task is to predict the age item. The evaluation metric is the RMSLE (root mean squared log error). Now train a regression model to get a good performance on this task.",
      ["Sex", "Length", "Diameter", "Height", "Weight", "Shucked Weight", "Viscera Weight", "Shell Weight", "Age"],
    );
    expect(r.task).toBe("regression");
    expect(r.target).toBe("Age");
    expect(r.metric).toBe("rmsle");
    expect(r.intent).toBe("build");
  });

  it("crop price", () => {
    const r = parseRequest(
      "I need a regression model to predict crop prices based on features like soil composition, environmental factors, historical yield data, and crop management practices from the dataset I uploaded here.",
      ["Soil_Type", "Rainfall", "Yield", "Crop_Price"],
    );
    expect(r.task).toBe("regression");
    expect(r.target).toBe("Crop_Price");
    expect(r.intent).toBe("build");
    expect(r.domain).toBe("agriculture");
  });

  it("crop price without columns", () => {
    const r = parseRequest("I need a regression model to predict crop prices based on features like soil composition.");
    expect(r.target).toBe("crop prices");
  });

  it("smoker status", () => {
    const r = parseRequest(
      "You are solving this data science tasks of unsupervised clustering: The dataset presented here (the Smoker Status Dataset) comprises a lot of numerical features. Please use the features in the test.csv file. Your task is to create the clustered items, which is a binary label with 0 and 1 (two clusters). The evaluation metric is the Rand index or Rand score, can be tested against 'smoking' labels. Now train an unsupervised clustering model to get a good performance on this task.",
      ["age", "height(cm)", "weight(kg)", "smoking"],
    );
    expect(r.task).toBe("clustering");
    expect(r.target).toBeNull();
    expect(r.labelsColumn).toBe("smoking");
    expect(r.nClusters).toBe(2);
    expect(r.metric).toBe("rand_index");
    expect(r.dataPaths).toEqual(["test.csv"]);
    expect(r.intent).toBe("build");
    expect(r.domain).toBe("healthcare");
  });

  it("student performance", () => {
    const r = parseRequest(
      "I want an unsupervised clustering model to group student performances into eight groups. The dataset named 'Higher Education Students Performance Evaluation' (id=856) can be downloaded via ucimlrepo library. The clustering quality can be check against target variable OUTPUT Grade.",
    );
    expect(r.task).toBe("clustering");
    expect(r.nClusters).toBe(8);
    expect(r.labelsColumn).toBe("OUTPUT Grade");
    expect(r.target).toBeNull();
    expect(r.intent).toBe("build");
    expect(r.domain).toBe("education");
  });

  it("student performance resolves the labels column", () => {
    const r = parseRequest(
      "I want an unsupervised clustering model to group student performances into eight groups. The clustering quality can be check against target variable OUTPUT Grade.",
      ["STUDENT ID", "1", "2", "COURSE ID", "OUTPUT_Grade"],
    );
    expect(r.labelsColumn).toBe("OUTPUT_Grade");
  });

  it("non-tabular task kinds", () => {
    expect(
      parseRequest(
        "I need a very accurate model to classify images in the Butterfly Image Classification dataset into their respective categories. The dataset has been uploaded with its label information in the labels.csv file.",
      ).task,
    ).toBe("image_classification");
    const shopee = parseRequest(
      "Please provide a classification model that categorizes images into one of four clothing categories. The image path, along with its label information, can be found in the files train_labels.csv and test_labels.csv.",
    );
    expect(shopee.task).toBe("image_classification");
    expect(shopee.dataPaths).toEqual(["train_labels.csv", "test_labels.csv"]);
    expect(
      parseRequest(
        "We need a state-of-the-art model for text classification based on the Ecommerce Text dataset. The model should be capable of accurately classifying text into four categories: Electronics, Household, Books, and Clothing & Accessories.",
      ).task,
    ).toBe("text_classification");
    const entail = parseRequest(
      "You are solving this machine learning tasks of classification: The dataset presented here (the Textual Entailment) comprises a series of labeled text pairs. Given two texts (text1 and text2), your task is to predict the relationship of the text pair of neutral (0), contradiction (1) or entailment (2). The evaluation metric is accuracy. Build a language model to get a good performance.",
    );
    expect(entail.task).toBe("text_classification");
    expect(entail.metric).toBe("accuracy");
    expect(entail.target).toBeNull();
    const weather = parseRequest(
      "Build a model to perform time-series forecasting using the Weather dataset uploaded here, evaluating its accuracy with the RMSLE metric. Note that the input is a sequence of past observations with fixed size (INPUT_SEQ_LEN=96, INPUT_DIM=21). The model should predict the next future sequence with a fixed size (PRED_SEQ_LEN=96, PRED_DIM=21).",
    );
    expect(weather.task).toBe("time_series_forecasting");
    expect(weather.metric).toBe("rmsle");
    expect(weather.constraints).toEqual([]);
    expect(
      parseRequest(
        "You are solving this machine learning tasks of time series forecasting: The dataset presented here (the Electricity dataset) comprises real-world time series data. The evaluation metric is root mean squared log error (RMSLE).",
      ).task,
    ).toBe("time_series_forecasting");
    const cora = parseRequest(
      "I want you to create a model for node classification on the Cora dataset to predict the category of each paper. You need to directly find the Cora dataset from a relevant library.",
    );
    expect(cora.task).toBe("node_classification");
    expect(cora.intent).toBe("build");
    expect(cora.target).toBeNull();
  });
});

describe("parseRequest: seed prompts, constraint-aware (AutoML-Agent Table 4)", () => {
  it("banana quality with XGBoost or LightGBM and 0.98 accuracy", () => {
    const r = parseRequest(
      "Build a machine learning model, potentially XGBoost or LightGBM, to classify banana quality as Good or Bad based on their numerical information about bananas of different quality (size, weight, sweetness, softness, harvest time, ripeness, and acidity). We have uploaded the entire dataset for you here in the banana_quality.csv file. The model must achieve at least 0.98 accuracy.",
      BANANA_COLS,
    );
    expect(r.requestedModels).toEqual(["xgboost", "lightgbm"]);
    expect(r.constraints).toEqual([{ name: "accuracy", op: ">=", target: 0.98, phrase: "at least 0.98 accuracy" }]);
    expect(r.metric).toBe("accuracy");
    expect(r.target).toBe("Quality");
  });

  it("software defects with training and latency limits", () => {
    const r = parseRequest(
      "You are solving this data science task of binary classification: The dataset presented here (the Software Defects Dataset) comprises a lot of numerical features. Please split the dataset into three parts of train, valid, and test. Your task is to predict the defects item, which is a binary label with 0 and 1. The evaluation metric is the F1 score. Please train a binary classification model to get a good performance on this task, ensuring that the model training time does not exceed 30 minutes and the prediction time for each instance is under 5 milliseconds.",
    );
    expect(r.target).toBe("defects");
    expect(r.metric).toBe("f1");
    expect(r.constraints).toEqual([
      { name: "train_time_s", op: "<=", target: 1800, phrase: "training time does not exceed 30 minutes" },
      { name: "latency_ms_per_row", op: "<", target: 5, phrase: "prediction time for each instance is under 5 milliseconds" },
    ]);
  });

  it("crab age with training and test-set prediction limits", () => {
    const r = parseRequest(
      "You are solving this data science task of regression: The dataset presented here (the Crab Age Dataset) comprises a lot of both categorical and numerical features. Please split the dataset into three parts of train, valid, and test. Your task is to predict the age item. The evaluation metric is the RMSLE (root mean squared log error). Now train a regression model to get a good performance on this task, ensuring that the model's training time does not exceed 30 minutes and that it can make predictions on the test set within 5 seconds.",
    );
    expect(r.target).toBe("age");
    expect(r.constraints.map((c) => [c.name, c.op, c.target])).toEqual([
      ["train_time_s", "<=", 1800],
      ["test_predict_s", "<=", 5],
    ]);
  });

  it("crop price with RMSLE less than 1.0", () => {
    const r = parseRequest(
      "I need an accurate regression model to predict crop prices based on features like soil composition, environmental factors, historical yield data, and crop management practices from the dataset I uploaded here. You should optimize the model to achieve RMSLE less than 1.0",
    );
    expect(r.task).toBe("regression");
    expect(r.metric).toBe("rmsle");
    expect(r.constraints).toEqual([{ name: "rmsle", op: "<", target: 1, phrase: "RMSLE less than 1.0" }]);
  });

  it("smoker status with Rand index and time limit", () => {
    const r = parseRequest(
      "You are solving this data science task of unsupervised clustering: The dataset presented here (the Smoker Status Dataset) comprises a lot of numerical features. Please use the features in test.csv. Your task is to create the clustered items, which is a binary label with 0 and 1 (two clusters). The evaluation metric is the Rand index or Rand score, which can be tested against 'smoking' labels. Now train an unsupervised clustering model to get a good performance on this task, ensuring that the Rand index is at least 0.75 and the model training time does not exceed 10 minutes.",
    );
    expect(r.labelsColumn).toBe("smoking");
    expect(r.nClusters).toBe(2);
    expect(r.constraints.map((c) => [c.name, c.op, c.target])).toEqual([
      ["rand_index", ">=", 0.75],
      ["train_time_s", "<=", 600],
    ]);
  });

  it("student performance with Rand Score and clustering time", () => {
    const r = parseRequest(
      "I want an unsupervised clustering model to group student performances into eight groups. The dataset named 'Higher Education Students Performance Evaluation' (id=856) can be downloaded via ucimlrepo library. The clustering quality can be checked against the target variable OUTPUT Grade. The model should achieve a Rand Score of at least 0.8 and complete clustering within 10 minutes.",
    );
    expect(r.labelsColumn).toBe("OUTPUT Grade");
    expect(r.nClusters).toBe(8);
    expect(r.metric).toBe("rand_index");
    expect(r.constraints).toEqual([
      { name: "rand_index", op: ">=", target: 0.8, phrase: "Rand Score of at least 0.8" },
      { name: "train_time_s", op: "<=", target: 600, phrase: "complete clustering within 10 minutes" },
    ]);
  });

  it("non-tabular constraint prompts", () => {
    const butterfly = parseRequest(
      "I need a highly accurate machine learning model developed to classify images within the Butterfly Image Classification dataset into their correct species categories. The dataset has been uploaded with its label information in the labels.csv file. Please use a convolutional neural network (CNN) architecture for this task, leveraging transfer learning from a pre-trained ResNet-50 model to improve accuracy. Optimize the model using cross-validation on the training split to fine-tune hyperparameters, and aim for an accuracy of at least 0.95 on the test split.",
    );
    expect(butterfly.task).toBe("image_classification");
    expect(butterfly.requestedModels).toEqual(["cnn", "resnet"]);
    expect(butterfly.constraints.map((c) => [c.name, c.op, c.target])).toEqual([["accuracy", ">=", 0.95]]);
    expect(butterfly.dataPaths).toEqual(["labels.csv"]);

    const shopee = parseRequest(
      "Please provide a classification model that categorizes images into one of four clothing categories. The model should achieve at least 85% accuracy on the test set and be implemented using PyTorch.",
    );
    expect(shopee.constraints.map((c) => [c.name, c.op, c.target])).toEqual([["accuracy", ">=", 0.85]]);

    const ecommerce = parseRequest(
      "We require the development of an advanced neural network model for text classification tailored to the Ecommerce Text dataset, with the objective of achieving at least 0.95 classification accuracy.",
    );
    expect(ecommerce.task).toBe("text_classification");
    expect(ecommerce.requestedModels).toEqual(["mlp"]);
    expect(ecommerce.intent).toBe("build");
    expect(ecommerce.constraints.map((c) => [c.name, c.op, c.target])).toEqual([["accuracy", ">=", 0.95]]);

    const entail = parseRequest(
      "Build a language model to get good performance, ensuring the model size does not exceed 200 million parameters and the inference time is less than 200 milliseconds per prediction.",
    );
    expect(entail.constraints).toEqual([
      { name: "n_params", op: "<=", target: 200_000_000, phrase: "model size does not exceed 200 million parameters" },
      { name: "latency_ms_per_row", op: "<", target: 200, phrase: "inference time is less than 200 milliseconds per prediction" },
    ]);

    const weather = parseRequest(
      "Build a state-of-the-art time-series forecasting model for the Weather dataset uploaded here, evaluating its accuracy with the RMSLE metric. We target RMSLE lower than 0.05.",
    );
    expect(weather.metric).toBe("rmsle");
    expect(weather.target).toBeNull();
    expect(weather.constraints.map((c) => [c.name, c.op, c.target])).toEqual([["rmsle", "<", 0.05]]);

    const electricity = parseRequest(
      "Now train a time series forecasting model to get a good performance on the given fixed sequences. Ensure the model achieves an RMSLE of less than 0.1 and that the training time does not exceed 1 hour on a GPU.",
    );
    expect(electricity.constraints.map((c) => [c.name, c.op, c.target])).toEqual([
      ["rmsle", "<", 0.1],
      ["train_time_s", "<=", 3600],
    ]);

    const cora = parseRequest(
      "I want you to develop a node classification model using the Graph Convolutional Network (GCN) algorithm to predict the category of each paper in the Cora dataset. Then, evaluate its accuracy on the test set. The accuracy on the test set should be over 0.90.",
    );
    expect(cora.task).toBe("node_classification");
    expect(cora.requestedModels).toEqual(["gcn"]);
    expect(cora.constraints).toEqual([{ name: "accuracy", op: ">", target: 0.9, phrase: "accuracy on the test set should be over 0.90" }]);
  });
});

describe("parseRequest: relevance and intent", () => {
  it.each([
    "what's the weather in Paris",
    "write me a poem about cats",
    "hi",
    "tell me a joke",
    "book a flight to Berlin for Friday",
    "",
    "   ",
  ])("off-topic: %j", (text) => {
    const r = parseRequest(text);
    expect(r.relevant).toBe(false);
    expect(r.intent).toBe("unclear");
  });

  it("a bare data file is relevant but unclear", () => {
    const r = parseRequest("here is sales.csv");
    expect(r.relevant).toBe(true);
    expect(r.intent).toBe("unclear");
    expect(r.dataPaths).toEqual(["sales.csv"]);
  });

  it("consult, inquire and consult-build", () => {
    expect(parseRequest("Which model should I use to predict churn in customers.csv?").intent).toBe("consult");
    expect(parseRequest("How would you approach predicting house prices?").intent).toBe("consult");
    expect(parseRequest("What is overfitting in machine learning?").intent).toBe("inquire");
    expect(parseRequest("Explain the difference between precision and recall.").intent).toBe("inquire");
    expect(parseRequest("Which model would you recommend for this dataset? Then train it on data.csv.").intent).toBe("consult-build");
    expect(parseRequest("Recommend a model for churn.csv and then build it.").intent).toBe("consult-build");
  });

  it("comparisons between named models are consultations", () => {
    expect(parseRequest("Which is better for tabular data, XGBoost or random forest?").intent).toBe("consult");
  });

  it("build phrasings", () => {
    expect(parseRequest("Use data.csv to predict the number of bikes rented per hour").intent).toBe("build");
    expect(parseRequest("My dataset is at /home/me/data/cars.csv - predict mpg.").intent).toBe("build");
    expect(parseRequest("I'd like a model that tells whether a transaction is fraudulent").intent).toBe("build");
    expect(parseRequest("Can you train a classifier on churn.csv?").intent).toBe("build");
    expect(parseRequest("Predict `SalePrice` in houses.csv").intent).toBe("build");
    expect(parseRequest("Cluster the customers in mall.csv into 5 groups").intent).toBe("build");
    expect(parseRequest("I want to predict whether a customer will churn").intent).toBe("build");
  });
});

describe("parseRequest: task kinds", () => {
  it.each([
    ["Classify emails as spam or not spam using their text", "text_classification"],
    ["Sentiment classification of movie reviews in reviews.csv", "text_classification"],
    ["Train a CNN to classify photos of cats and dogs", "image_classification"],
    ["Forecast next month's electricity demand from load.csv", "time_series_forecasting"],
    ["Segment customers into 5 segments based on spending", "clustering"],
    ["Run k-means on iris.csv with k=3", "clustering"],
    ["Is the loan approved? Predict yes or no for each applicant in loans.csv", "classification"],
    ["Build a multi-class model for the species column", "classification"],
    ["Estimate the price of each house in housing.csv", "regression"],
    ["Use logistic regression to predict whether a passenger survived", "classification"],
    ["Build a model for data.csv", null],
    ["Predict the outcome column in data.csv", null],
  ])("%s → %s", (text, task) => {
    expect(parseRequest(text).task).toBe(task);
  });

  it("metric family decides when the words do not", () => {
    expect(parseRequest("Build a model on data.csv with RMSE below 62").task).toBe("regression");
  });
});

describe("parseRequest: targets", () => {
  const cols = ["CustomerID", "Name", "Age", "Annual_Income", "Churn", "Exited"];
  it.each([
    ["The target is Churn", "Churn"],
    ["target column: annual income", "Annual_Income"],
    ["Target variable 'exited', please", "Exited"],
    ["label column is churn", "Churn"],
    ["Use Exited as the target", "Exited"],
    ["`Churn` is the target.", "Churn"],
    ["Build a model that predicts annual-income from the rest", "Annual_Income"],
    ["predict whether a customer will churn", "Churn"],
    ["The target is revenue", null],
  ])("%s → %s", (text, target) => {
    expect(parseRequest(text, cols).target).toBe(target);
  });

  it("without columns returns the cleaned words", () => {
    expect(parseRequest("Build a model that predicts `quality` in banana_quality.csv").target).toBe("quality");
    expect(parseRequest("The target variable is SalePrice.").target).toBe("SalePrice");
    expect(parseRequest("Your task is to predict the defects item.").target).toBe("defects");
  });

  it("a metric after 'target' is not a column", () => {
    expect(parseRequest("We target RMSLE lower than 0.05 on sales.csv").target).toBeNull();
    expect(parseRequest("Our target is high accuracy on data.csv").target).toBeNull();
    expect(parseRequest("The label is binary; predict it from data.csv").target).toBeNull();
  });

  it("phrases resolve to the column that matches their head word", () => {
    expect(parseRequest("classify banana quality as Good or Bad", BANANA_COLS).target).toBe("Quality");
    expect(parseRequest("classify loan status as approved or rejected", ["Loan_Status", "Income"]).target).toBe("Loan_Status");
    expect(parseRequest("predict the harvest-time of each banana", BANANA_COLS).target).toBe("HarvestTime");
  });

  it("rows being labelled are not the target", () => {
    expect(parseRequest("classify patients as diabetic or healthy").target).toBeNull();
  });

  it("possessives and quoted columns", () => {
    expect(parseRequest("predict next month's sales from sales.csv").target).toBe("sales");
    expect(parseRequest("Please build a regression model for the 'median_house_value' column of housing.csv").target).toBe("median_house_value");
  });
});

describe("parseRequest: metrics and thresholds", () => {
  it.each([
    ["accuracy at least 0.95", "accuracy", ">=", 0.95],
    ["at least 0.95 accuracy", "accuracy", ">=", 0.95],
    ["accuracy of at least 95%", "accuracy", ">=", 0.95],
    ["accuracy >= 0.9", "accuracy", ">=", 0.9],
    ["accuracy ≥ 0.9", "accuracy", ">=", 0.9],
    ["RMSE below 62", "rmse", "<", 62],
    ["RMSLE lower than 0.05", "rmsle", "<", 0.05],
    ["F1 above 0.8", "f1", ">", 0.8],
    ["F1-score must exceed .85", "f1", ">", 0.85],
    ["MAE no more than 3.5", "mae", "<=", 3.5],
    ["r2 of 0.9 or higher", "r2", ">=", 0.9],
    ["R² at least 0.7", "r2", ">=", 0.7],
    ["an accuracy of 0.98", "accuracy", ">=", 0.98],
    ["an RMSE of 1,000", "rmse", "<=", 1000],
    ["ROC AUC greater than 0.9", "roc_auc", ">", 0.9],
    ["area under the curve of at least 0.85", "roc_auc", ">=", 0.85],
    ["root mean squared error under 10", "rmse", "<", 10],
    ["mean absolute error at most 2", "mae", "<=", 2],
    ["adjusted Rand index above 0.5", "adjusted_rand_index", ">", 0.5],
    ["NMI of at least 0.6", "nmi", ">=", 0.6],
    ["silhouette score above 0.4", "silhouette", ">", 0.4],
    ["precision no less than 0.7", "precision", ">=", 0.7],
    ["recall > 0.6", "recall", ">", 0.6],
    ["F-measure of 0.9 or more", "f1", ">=", 0.9],
    ["coefficient of determination above 0.8", "r2", ">", 0.8],
    ["accuracy 0.9 or better", "accuracy", ">=", 0.9],
    ["accuracy must not be below 0.8", "accuracy", ">=", 0.8],
    ["RMSE better than 3", "rmse", "<", 3],
    ["Accuracy: 0.93", "accuracy", ">=", 0.93],
    ["R-squared > 0.6", "r2", ">", 0.6],
  ])("%s", (phrase, name, op, target) => {
    const r = parseRequest(`Train a model on data.csv, ${phrase}.`);
    expect(r.constraints).toHaveLength(1);
    expect(r.constraints[0]).toMatchObject({ name, op, target });
    expect(r.metric).toBe(name);
  });

  it("first metric mentioned when none has a threshold", () => {
    expect(parseRequest("Train a classifier on data.csv and report precision and recall").metric).toBe("precision");
    expect(parseRequest("Evaluate with the root mean square error, please, on data.csv").metric).toBe("rmse");
    expect(parseRequest("Clustering on data.csv, judged by the rand score").metric).toBe("rand_index");
  });

  it("top-k accuracy is not read as a plain accuracy threshold", () => {
    expect(parseRequest("Train a model on a.csv, top-5 accuracy of 0.9").constraints).toEqual([]);
  });

  it("the thresholded metric wins over one mentioned first", () => {
    const r = parseRequest("Report precision, but the model must reach recall of at least 0.9 on data.csv");
    expect(r.metric).toBe("recall");
  });
});

describe("parseRequest: complexity constraints", () => {
  const one = (text: string) => {
    const r = parseRequest(`Train a classifier on data.csv. ${text}`);
    expect(r.constraints).toHaveLength(1);
    return r.constraints[0];
  };
  it("training time", () => {
    expect(one("Training must not exceed 30 minutes.")).toMatchObject({ name: "train_time_s", op: "<=", target: 1800 });
    expect(one("Make sure the training time does not exceed 10 minutes.")).toMatchObject({ name: "train_time_s", op: "<=", target: 600 });
    expect(one("It should train in under 2 hours.")).toMatchObject({ name: "train_time_s", op: "<", target: 7200 });
    expect(one("Keep training time under 90 seconds.")).toMatchObject({ name: "train_time_s", op: "<", target: 90 });
    expect(one("Training should take 15 min or less.")).toMatchObject({ name: "train_time_s", op: "<=", target: 900 });
    expect(one("Fit within 1.5 hrs.")).toMatchObject({ name: "train_time_s", op: "<=", target: 5400 });
    expect(one("Training should not take longer than 20 minutes.")).toMatchObject({ name: "train_time_s", op: "<=", target: 1200 });
  });
  it("latency and test prediction", () => {
    expect(one("Predictions must take under 5 milliseconds per row.")).toMatchObject({ name: "latency_ms_per_row", op: "<", target: 5 });
    expect(one("Latency below 10 ms.")).toMatchObject({ name: "latency_ms_per_row", op: "<", target: 10 });
    expect(one("It must predict a row in under 0.1 seconds.")).toMatchObject({ name: "latency_ms_per_row", op: "<", target: 100 });
    expect(one("Make predictions on the test set within 5 seconds.")).toMatchObject({ name: "test_predict_s", op: "<=", target: 5 });
  });
  it("sizes and parameters", () => {
    expect(one("Model size under 50 MB.")).toMatchObject({ name: "model_size_mb", op: "<", target: 50 });
    expect(one("The model must be smaller than 1 GB.")).toMatchObject({ name: "model_size_mb", op: "<", target: 1024 });
    expect(one("Model size at most 500 KB.")).toMatchObject({ name: "model_size_mb", op: "<=", target: 0.48828125 });
    expect(one("GPU memory under 8 GB.")).toMatchObject({ name: "gpu_memory_mb", op: "<", target: 8192 });
    expect(one("Use fewer than 5M parameters.")).toMatchObject({ name: "n_params", op: "<", target: 5_000_000 });
    expect(one("The model should have no more than 1.5B parameters.")).toMatchObject({ name: "n_params", op: "<=", target: 1_500_000_000 });
    expect(one("Latency under 1,000 msec per row.")).toMatchObject({ name: "latency_ms_per_row", op: "<", target: 1000 });
  });
  it("keeps the user's words as the phrase", () => {
    expect(one("Training must not exceed 30 minutes.").phrase).toBe("Training must not exceed 30 minutes");
  });
  it("durations that are not limits are ignored", () => {
    expect(parseRequest("Forecast sensor.csv, sampled every 10 minutes over 2 days.").constraints).toEqual([]);
    expect(parseRequest("Forecast sales within 7 days using sales.csv").constraints).toEqual([]);
    expect(parseRequest("Train on data.csv for at least 10 minutes").constraints).toEqual([]);
  });
  it("several limits in one sentence", () => {
    const r = parseRequest("Build a classifier for heart.csv, target = HeartDisease, F1 >= 0.85, keep the model under 10MB and latency < 2ms per row");
    expect(r.target).toBe("HeartDisease");
    expect(r.constraints.map((c) => [c.name, c.op, c.target])).toEqual([
      ["f1", ">=", 0.85],
      ["model_size_mb", "<", 10],
      ["latency_ms_per_row", "<", 2],
    ]);
    expect(one("It should be able to make predictions in 50ms.")).toMatchObject({ name: "latency_ms_per_row", op: "<=", target: 50 });
  });
});

describe("parseRequest: other fields", () => {
  it("positive class", () => {
    expect(parseRequest("Classify churn.csv; the positive class is yes").positiveClass).toBe("yes");
    expect(parseRequest("Binary classification with positive class 'Good'").positiveClass).toBe("Good");
    expect(parseRequest("Predict churn and treat 'churned' as positive").positiveClass).toBe("churned");
  });

  it.each([
    ["Cluster the data in mall.csv into 3 clusters", 3],
    ["Group the customers into four groups with a clustering model", 4],
    ["Run k-means with k = 4 on data.csv", 4],
    ["Segment customers into 5 segments", 5],
    ["clustering model for data.csv (two clusters)", 2],
    ["Cluster the data in mall.csv", null],
  ])("clusters: %s", (text, n) => {
    expect(parseRequest(text).nClusters).toBe(n);
  });

  it("labels column for clustering", () => {
    expect(parseRequest("Cluster customers.csv and evaluate against column Segment", ["Age", "Income", "segment"]).labelsColumn).toBe("segment");
    expect(parseRequest("Cluster customers.csv; evaluate against column Region", ["Age", "Income"]).labelsColumn).toBeNull();
  });

  it("requested models in order, deduped", () => {
    expect(parseRequest("Try random forest, XGBoost, SVM and k-nearest neighbors on data.csv").requestedModels).toEqual([
      "random_forest",
      "xgboost",
      "svm",
      "knn",
    ]);
    expect(parseRequest("Compare logistic regression, a GBM, CatBoost and a neural network (MLP)").requestedModels).toEqual([
      "logistic_regression",
      "gradient_boosting",
      "catboost",
      "mlp",
    ]);
    expect(parseRequest("Cluster with KMeans, a GMM, hierarchical clustering or DBSCAN").requestedModels).toEqual([
      "kmeans",
      "gaussian_mixture",
      "agglomerative",
      "dbscan",
    ]);
    expect(parseRequest("Fine-tune BERT for sentiment classification; avoid XGBoost").requestedModels).toEqual(["bert"]);
    expect(parseRequest("gradient boosted trees vs a support vector machine vs a transformer").requestedModels).toEqual([
      "gradient_boosting",
      "svm",
      "transformer",
    ]);
    expect(parseRequest("Use HistGradientBoosting, extra trees, ridge, lasso, naive Bayes and a decision tree").requestedModels).toEqual([
      "hist_gradient_boosting",
      "extra_trees",
      "ridge",
      "lasso",
      "naive_bayes",
      "decision_tree",
    ]);
  });

  it("drop columns", () => {
    expect(parseRequest("Predict churn in churn.csv; ignore the id column", ["ID", "Age", "Churn"]).dropColumns).toEqual(["ID"]);
    expect(parseRequest("Predict Exited and exclude CustomerID and Name", ["CustomerID", "Name", "Age", "Exited"]).dropColumns).toEqual([
      "CustomerID",
      "Name",
    ]);
    expect(parseRequest("Train a classifier. Don't use column Surname.").dropColumns).toEqual(["Surname"]);
    expect(parseRequest("Predict price without using the zipcode, please", ["zip_code", "price"]).dropColumns).toEqual(["zip_code"]);
    expect(parseRequest("Train on data.csv but drop rows with missing values").dropColumns).toEqual([]);
    expect(parseRequest("Predict churn, don't use XGBoost").dropColumns).toEqual([]);
  });

  it("data paths", () => {
    expect(
      parseRequest('Train on ./data/sales.csv and /tmp/x.csv, then "data/my file.csv" and `labels.csv`; also sales.csv again.').dataPaths,
    ).toEqual(["./data/sales.csv", "/tmp/x.csv", "data/my file.csv", "labels.csv", "sales.csv"]);
    expect(parseRequest("The files are train.parquet, meta.json, notes.txt and images.zip.").dataPaths).toEqual([
      "train.parquet",
      "meta.json",
      "notes.txt",
      "images.zip",
    ]);
  });

  it("never throws on odd input", () => {
    expect(() => parseRequest(undefined as unknown as string)).not.toThrow();
    expect(() => parseRequest("accuracy >= >= 0.9 %%% `unclosed", ["", "a"])).not.toThrow();
    expect(() => parseRequest("x".repeat(20000) + " predict y")).not.toThrow();
  });
});

describe("text classification", () => {
  const TICKET_COLS = ["ticket_id", "text", "priority", "category"];

  it("reads the target of a text classification from the file's columns", () => {
    const r = parseRequest("Classify the support tickets in tickets.csv into their category using the text column", TICKET_COLS);
    expect(r.task).toBe("text_classification");
    expect(r.target).toBe("category");
    expect(r.dropColumns).toEqual([]);
    expect(r.dataPaths).toEqual(["tickets.csv"]);
    expect(parseRequest("Build a text classifier for products.csv that predicts category, accuracy at least 0.85", TICKET_COLS)).toMatchObject({
      task: "text_classification",
      target: "category",
      metric: "accuracy",
    });
    expect(parseRequest("Categorise the reviews into one of the categories using their text", TICKET_COLS).target).toBe("category");
  });

  it("names only real columns: without columns, or when the words name none, the target stays open", () => {
    expect(parseRequest("Classify the support tickets in tickets.csv into their category using the text column").target).toBeNull();
    expect(parseRequest("Classify the tweets into positive and negative using their text", TICKET_COLS).target).toBeNull();
    expect(parseRequest("Predict the relationship of the text pair with a language model", ["text1", "text2", "label"]).target).toBeNull();
  });
});

describe("parseRequest: forecasting parameters", () => {
  const SALES = ["date", "store", "price", "sales"];

  it.each([
    ["Forecast sales 14 days ahead", { value: 14, unit: "day" }],
    ["Predict the next 48 hours of load", { value: 48, unit: "hour" }],
    ["Forecast demand with a horizon of 24 steps", { value: 24, unit: "step" }],
    ["Forecast with a forecast horizon of 12", { value: 12, unit: "step" }],
    ["The model should predict the next future sequence with a fixed size (PRED_SEQ_LEN=96, PRED_DIM=21).", { value: 96, unit: "step" }],
    ["Forecast next month's electricity demand", { value: 1, unit: "month" }],
    ["A 7-step-ahead forecast of sales", { value: 7, unit: "step" }],
    ["Forecast three weeks ahead", { value: 3, unit: "week" }],
    ["Forecast the coming 6 months of revenue", { value: 6, unit: "month" }],
  ])("%s → horizon %o", (text, horizon) => {
    expect(parseRequest(text).horizon).toMatchObject(horizon);
  });

  it("reads no horizon where there is none, and never a horizon as a constraint", () => {
    expect(parseRequest("Predict Quality in banana.csv, training within 5 minutes").horizon).toBeNull();
    const r = parseRequest("Forecast the next 30 minutes of load in load.csv; training must not exceed 10 minutes", ["time", "load"]);
    expect(r.horizon).toMatchObject({ value: 30, unit: "minute" });
    expect(r.constraints).toEqual([{ name: "train_time_s", op: "<=", target: 600, phrase: "training must not exceed 10 minutes" }]);
  });

  it("asks for a forecast when the words give a horizon", () => {
    expect(parseRequest("Predict the next 7 days of sales in sales.csv").task).toBe("time_series_forecasting");
    expect(parseRequest("Predict sales 14 days ahead").task).toBe("time_series_forecasting");
    expect(parseRequest("Predict the price of each house").task).toBe("regression");
  });

  it("finds the forecast target among the columns", () => {
    expect(parseRequest("Forecast sales 14 days ahead in sales.csv", SALES).target).toBe("sales");
    expect(parseRequest("Forecast the next 48 hours of load from load.csv", ["timestamp", "load"]).target).toBe("load");
    expect(parseRequest("Forecast next month's electricity demand from load.csv", ["date", "demand"]).target).toBe("demand");
    // without columns, a forecast's object is not guessed
    expect(parseRequest("Forecast the weather for the next 7 days").target).toBeNull();
  });

  it("reads the time column and the series column", () => {
    const r = parseRequest("Forecast demand 24 steps ahead, one series per store_id; the time column is ts", ["ts", "store_id", "demand"]);
    expect(r.timeColumn).toBe("ts");
    expect(r.seriesColumn).toBe("store_id");
    expect(parseRequest("Forecast sales for each store for the next 7 days, indexed by date", SALES)).toMatchObject({ timeColumn: "date", seriesColumn: "store" });
    expect(parseRequest("Use the day column as the time and forecast sales", ["day", "sales"]).timeColumn).toBe("day");
    expect(parseRequest("Forecast sales using the date column", SALES).timeColumn).toBe("date");
    // "for each" that names no column is not a series column
    expect(parseRequest("Forecast sales for each week ahead", SALES).seriesColumn).toBeNull();
  });

  it("reads MAPE and sMAPE thresholds as fractions", () => {
    expect(parseRequest("Forecast load 24 hours ahead with MAPE below 10%").constraints).toEqual([{ name: "mape", op: "<", target: 0.1, phrase: "MAPE below 10%" }]);
    const s = parseRequest("Forecast sales, symmetric mean absolute percentage error under 0.15");
    expect(s.metric).toBe("smape");
    expect(s.constraints[0]).toMatchObject({ name: "smape", op: "<", target: 0.15 });
    expect(parseRequest("Forecast sales, MAE at most 3").metric).toBe("mae");
  });
});

describe("parseRequest: image and graph data", () => {
  it("reads folders written with a trailing slash as data paths", () => {
    expect(parseRequest("Classify the images in photos/ into their classes").dataPaths).toEqual(["photos/"]);
    expect(parseRequest('Classify the pets in "./data/pets/" by breed').dataPaths).toEqual(["./data/pets/"]);
    expect(parseRequest("Use labels.csv and the images in ./shots/ for and/or tests, see https://example.com/x/").dataPaths).toEqual(["labels.csv", "./shots/"]);
  });

  it("names CNNs, ResNets and PyTorch as model requests", () => {
    expect(parseRequest("Fine-tune a ResNet on the images in pets.zip").requestedModels).toEqual(["resnet"]);
    expect(parseRequest("Train a CNN to classify photos").requestedModels).toEqual(["cnn"]);
    expect(parseRequest("Categorize the clothing images; it should be implemented using PyTorch").requestedModels).toEqual(["pytorch"]);
    expect(parseRequest("Forecast sales with an LSTM or ARIMA").requestedModels).toEqual(["lstm", "arima"]);
  });
});
