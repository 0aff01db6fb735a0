"""Every text the interface shows, in English and Simplified Chinese (Gradio's ``gr.I18n``).

Gradio picks the language from the browser's locale; keys are used in code, so a missing
translation shows the English text, never a key.
"""

from __future__ import annotations

EN: dict[str, str] = {
    "title": "edgebird: custom bird-song classifiers on BirdNET",
    "intro": "Analyze recordings with BirdNET V2.4 or your own classifier, train one, cut and "
             "review clips. Everything runs on this computer.",
    "tab_single": "Single file", "tab_batch": "Batch", "tab_train": "Train",
    "tab_segments": "Segments", "tab_review": "Review",
    "settings": "Detection settings", "min_conf": "Minimum confidence",
    "sensitivity": "Sensitivity (logit shift, as BirdNET-Analyzer 2.x)",
    "overlap": "Overlap (s)", "use_top_n": "Keep the top N species per window",
    "top_n": "Top N", "merge": "Merge consecutive detections (1 = off)",
    "fmin": "Bandpass lower edge (Hz)", "fmax": "Bandpass upper edge (Hz)",
    "species_mode": "Species", "species_all": "All species",
    "species_list": "Species list file", "species_location": "By location and week",
    "species_file": "Species list (one label per line)", "lat": "Latitude",
    "lon": "Longitude", "week": "Week (1-48, -1 = whole year)",
    "sf_thresh": "Location filter threshold", "show_species": "Show the species list",
    "species_shown": "Species that will be kept",
    "model_mode": "Model", "model_birdnet": "BirdNET V2.4",
    "model_custom": "Custom classifier", "classifier": "Classifier (.tflite)",
    "model_status": "Model check",
    "audio_in": "Recording", "analyze": "Analyze", "spectrogram": "Spectrogram and detections",
    "results": "Detections (select a row to play it)", "play": "Selected detection",
    "downloads": "Result tables", "status": "Status",
    "input_dir": "Folder of recordings (searched recursively)",
    "output_dir": "Results folder", "rtypes": "Result types",
    "combine": "Combine tables over all files", "skip_existing": "Skip files already analyzed",
    "workers": "Worker processes (0 = one per core)", "start": "Start", "cancel": "Cancel",
    "file_status": "Files", "summary": "Summary",
    "data_dir": "Training data folder (one subfolder per class)", "scan": "Check the folder",
    "classes_found": "What the folder holds", "train_out": "Classifier output folder",
    "test_data": "Separate test folder (optional, same classes)",
    "group_pattern": "Recording id pattern (regex, optional)", "seed": "Random seed",
    "model_name": "Model name", "folds": "Folds (grouped by recording; 0: auto)",
    "epochs": "Epochs (at most)", "batch_size": "Batch size", "learning_rate": "Learning rate",
    "hidden_units": "Hidden units (0 = none)", "dropout": "Dropout",
    "label_smoothing": "Label smoothing", "mixup": "Mixup", "focal": "Focal loss",
    "focal_gamma": "Focal loss gamma", "focal_alpha": "Focal loss alpha",
    "upsampling_mode": "Upsampling mode", "upsampling_ratio": "Upsampling ratio (0 = off)",
    "synthetic_negatives": "Noise windows made in code (rain, wind, engines)",
    "holdout_species": "Held-out species for false-positive tests",
    "crop_mode": "Crop mode", "save_mode": "Standalone model", "train": "Train",
    "log": "Progress", "metrics": "Per-class metrics (mean over folds)",
    "curves": "Learning curves", "confusion": "Confusion matrix",
    "train_done": "Result", "use_model": "Use it for analysis",
    "files_model": "The classifier to use (model, labels, thresholds)",
    "files_report": "Report (read me first, metrics, pictures)",
    "files_advanced": "Advanced files (per-fold models, the head alone, parameters)",
    "seg_audio": "Folder of recordings", "seg_results": "Results (folder or table)",
    "seg_out": "Folder for the clips", "max_conf": "Maximum confidence",
    "max_segments": "Clips per species (at most)", "seg_length": "Clip length (s)",
    "collection_mode": "Which clips", "cut": "Cut clips", "preview": "Preview",
    "review_dir": "Clips folder (from Segments)", "load": "Load", "species": "Species",
    "clip": "Clip", "right": "Right", "wrong": "Wrong", "skip": "Skip", "undo": "Undo",
    "review_clip_info": "This clip", "clip_spectrogram": "Spectrogram of the clip",
    "review_keys": "Keys: **R** right, **W** wrong, **S** skip, **U** undo (outside text "
                   "boxes). Each verdict moves the clip into Species/Positive/ or "
                   "Species/Negative/, where Retrain reads it.",
    "precision": "Wanted precision", "calibration": "Score threshold for that precision",
    "calibration_plot": "P(correct) against confidence", "remaining": "Clips left",
}

ZH: dict[str, str] = {
    "title": "edgebird：基于 BirdNET 的自定义鸟鸣分类器",
    "intro": "用 BirdNET V2.4 或你自己的分类器分析录音，训练分类器，截取并复核片段。"
             "全部在本机运行。",
    "tab_single": "单个文件", "tab_batch": "批量分析", "tab_train": "训练",
    "tab_segments": "片段", "tab_review": "复核",
    "settings": "检测设置", "min_conf": "最低置信度",
    "sensitivity": "灵敏度（与 BirdNET-Analyzer 2.x 相同的 logit 平移）",
    "overlap": "重叠（秒）", "use_top_n": "每个窗口只保留前 N 个物种", "top_n": "前 N 个",
    "merge": "合并连续检测（1 = 不合并）", "fmin": "带通下限（Hz）", "fmax": "带通上限（Hz）",
    "species_mode": "物种", "species_all": "全部物种", "species_list": "物种列表文件",
    "species_location": "按地点和周", "species_file": "物种列表（每行一个标签）",
    "lat": "纬度", "lon": "经度", "week": "周（1-48，-1 = 全年）",
    "sf_thresh": "地点过滤阈值", "show_species": "显示物种列表", "species_shown": "将保留的物种",
    "model_mode": "模型", "model_birdnet": "BirdNET V2.4", "model_custom": "自定义分类器",
    "classifier": "分类器（.tflite）", "model_status": "模型检查",
    "audio_in": "录音", "analyze": "分析", "spectrogram": "语谱图与检测结果",
    "results": "检测结果（选中一行即可播放）", "play": "选中的检测", "downloads": "结果表格",
    "status": "状态", "input_dir": "录音文件夹（包含子文件夹）", "output_dir": "结果文件夹",
    "rtypes": "结果类型", "combine": "合并所有文件的表格", "skip_existing": "跳过已分析的文件",
    "workers": "工作进程数（0 = 每个核心一个）", "start": "开始", "cancel": "取消",
    "file_status": "文件", "summary": "汇总",
    "data_dir": "训练数据文件夹（每个类别一个子文件夹）", "scan": "检查文件夹",
    "classes_found": "文件夹内容", "train_out": "分类器输出文件夹", "model_name": "模型名称",
    "test_data": "独立测试文件夹（可选，类别相同）", "group_pattern": "录音编号模式（正则，可选）",
    "seed": "随机种子",
    "folds": "折数（按录音分组；0：自动）", "epochs": "最多训练轮数", "batch_size": "批大小",
    "learning_rate": "学习率", "hidden_units": "隐藏单元（0 = 无）", "dropout": "Dropout",
    "label_smoothing": "标签平滑", "mixup": "Mixup", "focal": "Focal loss",
    "focal_gamma": "Focal loss gamma", "focal_alpha": "Focal loss alpha",
    "upsampling_mode": "上采样方式", "upsampling_ratio": "上采样比例（0 = 关闭）",
    "synthetic_negatives": "程序生成的噪声窗口（雨、风、发动机）",
    "holdout_species": "用于误报测试的留出物种数", "crop_mode": "裁剪方式",
    "save_mode": "独立模型", "train": "训练", "log": "进度", "metrics": "各类别指标（各折平均）",
    "curves": "学习曲线", "confusion": "混淆矩阵",
    "train_done": "结果", "use_model": "用它来分析",
    "files_model": "要使用的分类器（模型、标签、阈值）",
    "files_report": "报告（先读这个、指标、图片）",
    "files_advanced": "高级文件（各折模型、单独的分类头、参数）",
    "seg_audio": "录音文件夹", "seg_results": "结果（文件夹或表格）", "seg_out": "片段输出文件夹",
    "max_conf": "最高置信度", "max_segments": "每个物种最多片段数", "seg_length": "片段长度（秒）",
    "collection_mode": "片段选取方式", "cut": "截取片段", "preview": "预览",
    "review_dir": "片段文件夹（来自“片段”页）", "load": "载入", "species": "物种", "clip": "片段",
    "right": "正确", "wrong": "错误", "skip": "跳过", "undo": "撤销",
    "review_clip_info": "当前片段", "clip_spectrogram": "片段的频谱图",
    "review_keys": "快捷键：**R** 正确，**W** 错误，**S** 跳过，**U** 撤销（不在文本框内时）。"
                   "每次判断会把片段移入 物种/Positive/ 或 物种/Negative/，“重新训练”从那里读取。",
    "precision": "期望精确率",
    "calibration": "达到该精确率的分数阈值", "calibration_plot": "P(正确) 与置信度",
    "remaining": "剩余片段",
}


#: The Evaluate and Search tabs (gui/loop.py).
EN.update({
    "class_thresholds": "A custom classifier uses its own per-class thresholds (its "
                        "_Thresholds.csv) instead of the minimum confidence",
    "background_dir": "Site background folder (optional: your site's audio without the "
                      "target species)",
    "head": "Head",
    "head_info": "anchored: starts from BirdNET's own classifier for species it knows "
                 "(recommended); dense: the Keras head (uses the options below)",
    "keras_options": "Dense (Keras) head options",
    "autotune": "Autotune trials (0 = off)",
    "autotune_info": "search the head's settings first, each trial scored on your recordings "
                     "(about 2 s a trial with the anchored head on 100 clips; longer with dense)",
    "tab_evaluate": "Evaluate", "tab_search": "Search",
    "ev_results": "Result tables (folder or file)",
    "ev_annotations": "Annotations (Raven table or file,begin,end,label CSV)",
    "ev_audio": "Audio folder (optional: durations for false positives per hour)",
    "ev_thresholds": "Thresholds file (optional, a model's _Thresholds.csv)",
    "ev_target": "Target precision", "ev_run": "Evaluate",
    "ev_pr": "Precision-recall", "ev_thr": "Precision and recall by threshold",
    "ev_files": "Report, table and thresholds for the target precision",
    "se_store": "Embedding store (made by 'edgebird embed')", "se_query": "Query clip",
    "se_start": "From (s)", "se_end": "To (s; 0 = the whole clip)", "se_k": "How many results",
    "se_per": "At most per recording", "se_run": "Search", "se_hits": "Most similar windows "
    "(select one to listen)", "se_clip": "Selected result",
    "se_training": "Training folder to mark results into",
    "se_label": "Class the results are marked for (its folder name)",
    "se_marked": "Last clip written",
    "se_all": "All results as a table (select a row to listen and mark it)",
    "se_right_row": "Selected row is right", "se_wrong_row": "Selected row is wrong",
    "retrain": "Retrain on this reviewed folder (opens Train with it checked)",
    "use_calibrated": "Use the calibrated thresholds (wanted precision, every species) for "
                      "the classifier chosen above",
    "calibrated_written": "Thresholds written",
})
ZH.update({
    "class_thresholds": "自定义分类器使用其自带的逐类阈值（_Thresholds.csv），而不是最低置信度",
    "background_dir": "现场背景文件夹（可选：不含目标物种的本地录音）",
    "head": "分类头",
    "head_info": "anchored：对 BirdNET 已知的物种从 BirdNET 自己的分类器出发（推荐）；"
                 "dense：Keras 分类头（使用下面的选项）",
    "keras_options": "Dense（Keras）分类头选项",
    "autotune": "自动调参试验次数（0 = 关闭）",
    "autotune_info": "先搜索分类头的设置，每次试验都在你的录音上评分"
                     "（100 个片段时 anchored 分类头每次约 2 秒；dense 更久）",
    "tab_evaluate": "评估", "tab_search": "搜索",
    "ev_results": "结果表（文件夹或文件）",
    "ev_annotations": "标注（Raven 表或 file,begin,end,label CSV）",
    "ev_audio": "音频文件夹（可选：用于每小时误报数的时长）",
    "ev_thresholds": "阈值文件（可选，模型的 _Thresholds.csv）",
    "ev_target": "目标精确率", "ev_run": "评估",
    "ev_pr": "精确率-召回率", "ev_thr": "各阈值下的精确率与召回率",
    "ev_files": "报告、表格与达到目标精确率的阈值",
    "se_store": "嵌入库（由 'edgebird embed' 生成）", "se_query": "查询片段",
    "se_start": "起点（秒）", "se_end": "终点（秒；0 = 整个片段）", "se_k": "结果数",
    "se_per": "每个录音最多", "se_run": "搜索", "se_hits": "最相似的窗口（选中一行试听）",
    "se_clip": "所选结果", "se_training": "标记结果写入的训练文件夹",
    "se_label": "类别（文件夹名）", "se_marked": "最近写入的片段",
    "se_all": "全部结果表格（选中一行试听并标记）",
    "se_right_row": "选中的行正确", "se_wrong_row": "选中的行错误",
    "retrain": "用这个已审核的文件夹重新训练（打开训练页并检查它）",
    "use_calibrated": "为上方所选的分类器使用校准后的阈值（期望精确率，所有物种）",
    "calibrated_written": "已写入的阈值",
})


#: The Species and Settings tabs (gui/species_tab.py).
EN.update({
    "tab_species": "Species", "tab_settings": "Settings",
    "names_language": "Language of species names (auto: the browser's)",
    "make_list": "Make the species list", "sp_summary": "List",
    "sp_table": "Species likely here (by occurrence score)",
    "sp_save_to": "Save to (a .txt file or a folder)", "sp_save": "Save the species list",
    "settings_note": "Saved in gui.json in your config folder; the Species tab starts from "
                     "it at the next page load, Single file's detections at the next analysis "
                     "(the theme changes at once). The interface text follows your browser's "
                     "language; the setting below chooses the language of species names.",
    "default_output": "Default output folder (prefills the Species tab's save box)",
    "theme": "Theme", "save_settings": "Save settings",
})
ZH.update({
    "tab_species": "物种", "tab_settings": "设置",
    "names_language": "物种名称语言（auto：跟随浏览器）",
    "make_list": "生成物种列表", "sp_summary": "列表",
    "sp_table": "此地可能出现的物种（按出现分数）",
    "sp_save_to": "保存到（.txt 文件或文件夹）", "sp_save": "保存物种列表",
    "settings_note": "保存在配置文件夹的 gui.json 中；“物种”页在下次载入页面时使用它，"
                     "“单个文件”的检测结果在下次分析时使用它（主题立即生效）。界面文字跟随浏览器的"
                     "语言；下面的设置选择物种名称的语言。",
    "default_output": "默认输出文件夹（预填“物种”页的保存位置）",
    "theme": "主题", "save_settings": "保存设置",
})


class Texts:
    """``t("key")`` gives a translatable label. Keys are prefixed (``eb_``) in Gradio's table so
    they never collide with Gradio's own translation keys (``status`` is one of them)."""

    PREFIX = "eb_"

    def __init__(self):
        import gradio as gr

        en = {self.PREFIX + k: v for k, v in EN.items()}
        zh = {**en, **{self.PREFIX + k: v for k, v in ZH.items()}}
        self.i18n = gr.I18n(en=en, **{"zh-CN": zh, "zh": zh})

    def __call__(self, key: str):
        if key not in EN:
            raise KeyError(f"no text for {key!r}")
        return self.i18n(self.PREFIX + key)


def i18n() -> Texts:
    return Texts()
