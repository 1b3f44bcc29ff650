"""The words of the run report, in English and Simplified Chinese.

Each entry is a format string; the report fills in the numbers, so both
languages print exactly the same values.
"""

LANGUAGES = ("en", "zh")

TEXT = {
    "en": {
        "html_lang": "en",
        "title": "Siamese network on MNIST digit pairs: run report",
        "intro": "Run folder: {run_dir}. Written by siamese-mnist {version}. Every number below "
                 "is read from metrics.json, config.json, train_log.csv or the checkpoint of "
                 "this run.",
        "summary": "Summary",
        "summary_text": "Test accuracy {accuracy} ({correct} of {pairs} test pairs right) with the "
                        "distance threshold {threshold}, chosen by the {method} method on "
                        "{val_pairs} validation pairs. The test pairs played no part in training "
                        "or in the choice of the threshold.",

        "setup": "Setup",
        "item": "item",
        "value": "value",
        "data": "data",
        "data_value": "MNIST, read from {data_dir}",
        "splits": "splits (images)",
        "splits_value": "train {train}, validation {val} (held out of the training images), test {test}",
        "pair_sets": "pair sets",
        "pair_sets_value": "{val_pairs} validation pairs for the threshold, {test_pairs} test pairs",
        "network": "network",
        "network_value": "LeNet-style CNN shared by both images of a pair: two 5x5 convolutions "
                         "({channels} channels) with BatchNorm, ReLU and 2x2 max-pooling, a hidden "
                         "layer of {hidden} units, an embedding of {embedding_dim} values",
        "loss": "loss",
        "loss_value": "contrastive loss with margin {margin}: same pairs pay d²/2, different pairs "
                      "pay max(0, margin - d)²/2, where d is the Euclidean distance",
        "training": "training",
        "training_value": "{epochs} epochs of {images_per_epoch} images, {batch_size} pairs per step "
                          "formed among {images_per_batch} images, AdamW with peak learning rate "
                          "{lr} (one-cycle schedule), weight decay {weight_decay}, augmentation {augment}",
        "augment_on": "on (random rotation, scaling and shift)",
        "augment_off": "off",
        "seed": "seed",
        "device": "device",
        "device_value": "{device} (setting: {setting})",
        "time": "training time",
        "time_value": "{seconds} s",

        "counts": "Test pair set",
        "counts_text": "The table counts the scored pairs by type, recounted from their labels. "
                       "The balanced test set that run and evaluate build from the 10,000 MNIST test "
                       "images has half its pairs showing the same digit twice (positive types) and "
                       "half showing two different digits (negative types), with the same count for "
                       "every type of each kind; a pair file given with --pairs may differ.",

        "log": "Training log",
        "log_text": "One row per epoch, as written to train_log.csv. The validation accuracy uses "
                    "the threshold chosen on the validation pairs after that epoch.",
        "fig_training": "Mean training loss and validation accuracy per epoch.",
        "log_columns": {"val_accuracy": "validation accuracy"},

        "threshold": "Threshold choice",
        "threshold_text": "A pair is predicted to show the same digit when the distance between its "
                          "two embeddings is below the threshold. Each method below chooses a "
                          "threshold on the validation pairs only: pr-breakeven (precision equals "
                          "recall), roc-youden (maximum true positive rate minus false positive "
                          "rate), max-accuracy (maximum accuracy) and eer (false accept rate equals "
                          "false reject rate). The test accuracy of every method is shown for "
                          "comparison; the run uses {method}.",
        "method": "method",
        "threshold_value": "threshold",
        "val_accuracy": "validation accuracy",
        "test_accuracy": "test accuracy",
        "in_use": "in use",
        "yes": "yes",
        "no": "",
        "fig_pr": "Precision against recall on validation and test pairs, with the threshold "
                  "against recall (right axis) and the operating points of the chosen threshold "
                  "(ring: validation, dot: test); the inset enlarges the top-right corner.",
        "fig_roc": "ROC curve with its area under the curve (AUC) and the operating point; the "
                   "inset enlarges the top-left corner.",
        "fig_hist": "Distances of same-digit and different-digit test pairs, with the threshold.",

        "metrics": "Test metrics",
        "metrics_text": "Positive class: same digit. Computed on the {pairs} test pairs with the "
                        "threshold {threshold}.",
        "metric": "metric",
        "accuracy": "accuracy",
        "precision": "precision",
        "recall": "recall",
        "f1": "F1",
        "balanced_accuracy": "balanced accuracy",
        "roc_auc": "ROC AUC",
        "average_precision": "average precision",
        "pr_auc": "PR AUC (trapezoidal)",
        "eer": "equal error rate (EER)",
        "confusion": "Confusion matrix (rows: true class, columns: prediction):",
        "actual": "true class",
        "predicted_same": "predicted same",
        "predicted_different": "predicted different",
        "same": "same digit",
        "different": "different digits",

        "types": "Accuracy per pair type",
        "types_text": "Accuracy of each of the {n_types} pair types. Worst types: {worst}.",
        "more_tied": ", and {count} more at {accuracy}",
        "fig_types": "Test accuracy (%) per pair type; the diagonal holds the same-digit types, "
                     "each cell above it one pair of different digits.",
        "type": "type",
        "kind": "kind",
        "positive": "positive",
        "negative": "negative",
        "pairs": "pairs",
        "correct": "correct",
        "none": "none",
        "undefined": "undefined (the pairs lack one class)",

        "embedding": "Embedding map",
        "fig_embedding": "The embeddings of the test images in two dimensions, coloured by digit.",

        "errors": "Error gallery",
        "errors_text": "{false_same} different-digit pairs were predicted same and {false_different} "
                       "same-digit pairs were predicted different. Below are the worst of each: "
                       "false same pairs with the smallest distance, false different pairs with the "
                       "largest.",
        "fig_errors": "The worst test errors; each pair shows its two images side by side with their "
                      "digits and distance.",
        "error_kind": "error",
        "false_same": "false same",
        "false_different": "false different",
        "digits": "digits",
        "indices": "test image indices",
        "distance": "distance",

        "reproduce": "Reproduce",
        "reproduce_text": "This command, run with the same data, trains and evaluates again with the "
                          "same settings and seed, into a new folder:",
        "no_command": "The command was not recorded: config.json is missing from the run folder.",
    },
    "zh": {
        "html_lang": "zh-CN",
        "title": "MNIST 数字对孪生网络：运行报告",
        "intro": "运行目录：{run_dir}。由 siamese-mnist {version} 生成。下文的每个数字都取自本次运行的 "
                 "metrics.json、config.json、train_log.csv 或模型检查点。",
        "summary": "概要",
        "summary_text": "测试准确率 {accuracy}（{pairs} 个测试对中判对 {correct} 个）。距离阈值为 "
                        "{threshold}，由 {method} 方法在 {val_pairs} 个验证对上选出。测试对既不参与训练，"
                        "也不参与阈值的选择。",

        "setup": "实验设置",
        "item": "项目",
        "value": "取值",
        "data": "数据",
        "data_value": "MNIST，读取自 {data_dir}",
        "splits": "数据划分（图像数）",
        "splits_value": "训练 {train}，验证 {val}（从训练图像中留出），测试 {test}",
        "pair_sets": "数字对集合",
        "pair_sets_value": "{val_pairs} 个验证对用于选择阈值，{test_pairs} 个测试对",
        "network": "网络",
        "network_value": "一对图像共用的 LeNet 式卷积网络：两层 5x5 卷积（{channels} 个通道），"
                         "各带 BatchNorm、ReLU 和 2x2 最大池化，一个 {hidden} 单元的隐藏层，"
                         "输出 {embedding_dim} 维嵌入向量",
        "loss": "损失函数",
        "loss_value": "对比损失，间隔（margin）为 {margin}：同类对的损失为 d²/2，异类对为 "
                      "max(0, margin - d)²/2，其中 d 为欧氏距离",
        "training": "训练",
        "training_value": "{epochs} 轮，每轮 {images_per_epoch} 张图像；每步 {batch_size} 个数字对，"
                          "由 {images_per_batch} 张图像组成；AdamW 优化器，峰值学习率 {lr}"
                          "（one-cycle 调度），权重衰减 {weight_decay}，数据增强{augment}",
        "augment_on": "开启（随机旋转、缩放和平移）",
        "augment_off": "关闭",
        "seed": "随机种子",
        "device": "设备",
        "device_value": "{device}（设置：{setting}）",
        "time": "训练时间",
        "time_value": "{seconds} 秒",

        "counts": "测试数字对集合",
        "counts_text": "下表按类型统计被评估的数字对，由它们的标签重新计数。run 和 evaluate 从 10,000 张 "
                       "MNIST 测试图像构建的均衡测试集中，一半是同一数字的两张图像（正类型），一半是两个"
                       "不同数字（负类型），同一种类中每个类型的数量相同；用 --pairs 指定的数字对文件"
                       "可能不同。",

        "log": "训练日志",
        "log_text": "每轮一行，与 train_log.csv 中的内容一致。验证准确率使用该轮结束后在验证对上"
                    "选出的阈值。",
        "fig_training": "每轮的平均训练损失和验证准确率。",
        "log_columns": {"epoch": "轮次", "loss": "损失", "val_accuracy": "验证准确率",
                        "threshold": "阈值", "seconds": "秒"},

        "threshold": "阈值的选择",
        "threshold_text": "当一对图像的嵌入距离小于阈值时，预测为同一数字。下列每种方法都只在验证对上"
                          "选择阈值：pr-breakeven（精确率等于召回率）、roc-youden（真正例率减假正例率"
                          "最大）、max-accuracy（准确率最高）和 eer（误接受率等于误拒绝率）。表中同时列出"
                          "各方法的测试准确率以供比较；本次运行使用 {method}。",
        "method": "方法",
        "threshold_value": "阈值",
        "val_accuracy": "验证准确率",
        "test_accuracy": "测试准确率",
        "in_use": "是否采用",
        "yes": "是",
        "no": "",
        "fig_pr": "验证对与测试对上的精确率-召回率曲线；右轴为阈值随召回率的变化，并标出所选阈值的"
                  "工作点（圆环：验证对，圆点：测试对）；小图放大了右上角。",
        "fig_roc": "ROC 曲线及其曲线下面积（AUC）和工作点；小图放大了左上角。",
        "fig_hist": "同一数字与不同数字测试对的距离分布，以及阈值所在位置。",

        "metrics": "测试指标",
        "metrics_text": "正类为“同一数字”。在 {pairs} 个测试对上以阈值 {threshold} 计算。",
        "metric": "指标",
        "accuracy": "准确率",
        "precision": "精确率",
        "recall": "召回率",
        "f1": "F1 值",
        "balanced_accuracy": "平衡准确率",
        "roc_auc": "ROC AUC",
        "average_precision": "平均精确率（AP）",
        "pr_auc": "PR AUC（梯形法）",
        "eer": "等错误率（EER）",
        "confusion": "混淆矩阵（行：真实类别，列：预测结果）：",
        "actual": "真实类别",
        "predicted_same": "预测为同一数字",
        "predicted_different": "预测为不同数字",
        "same": "同一数字",
        "different": "不同数字",

        "types": "各数字对类型的准确率",
        "types_text": "全部 {n_types} 种数字对类型各自的准确率。最差的类型：{worst}。",
        "more_tied": "，另有 {count} 种同为 {accuracy}",
        "fig_types": "各数字对类型的测试准确率（%）；对角线为同一数字的类型，其上方每格为一对不同数字。",
        "type": "类型",
        "kind": "种类",
        "positive": "正",
        "negative": "负",
        "pairs": "对数",
        "correct": "判对",
        "none": "无",
        "undefined": "无定义（数字对只有一类）",

        "embedding": "嵌入分布图",
        "fig_embedding": "测试图像的嵌入向量在二维平面上的分布，按数字着色。",

        "errors": "错误样例",
        "errors_text": "有 {false_same} 个不同数字的对被预测为同一数字，{false_different} 个同一数字的对"
                       "被预测为不同数字。下面分别列出最严重的错误：误判为相同的对按距离从小到大，"
                       "误判为不同的对按距离从大到小。",
        "fig_errors": "最严重的测试错误；每个数字对并排显示两张图像及其数字和距离。",
        "error_kind": "错误类型",
        "false_same": "误判为相同",
        "false_different": "误判为不同",
        "digits": "数字",
        "indices": "测试图像序号",
        "distance": "距离",

        "reproduce": "复现",
        "reproduce_text": "在相同数据上运行下面的命令，即可用相同的设置和随机种子重新训练并评估，结果写入新的目录：",
        "no_command": "未记录运行命令：运行目录中缺少 config.json。",
    },
}
