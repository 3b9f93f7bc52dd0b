// UI text in English and Chinese. Static text lives in index.html (English) and is marked
// data-i18n="key"; ZH below replaces it. Dynamic text goes through t(key, vars), which reads
// EN or ZH. Messages that come from the engine (Rust) stay in English.

const EN = {
  'check.ok': 'No problems found.',
  'check.rows': '{usable} usable rows of {rows}.',
  'check.emptyText': '{n} rows have an empty text and will be skipped.',
  'check.emptyLabel': '{n} rows have an empty label and will be skipped.',
  'check.duplicates': '{n} rows repeat an earlier text ({c} of them with a different label).',
  'check.rare': 'Rare labels (under {k} examples): {list}. The model will barely learn them.',
  'check.oneClass': 'Only one label ({label}): classification needs at least two.',
  'check.truncated': '{n} of {of} texts are longer than {max} tokens and will be cut (longest: {longest}, 95% are at most {p95}).',
  'check.notTruncated': 'Every text fits in {max} tokens (longest: {longest}, mean {mean}).',
  'check.short': '{n} texts have fewer than 3 tokens.',
  'check.sampled': 'Token counts from an evenly spaced sample of {counted} of {of} texts.',
  'check.noTokenizer': 'Load a model to see token lengths and truncation.',
  'check.evalUnseen': 'The evaluation file has labels the training data does not: {list}. Training will refuse it.',
  'check.evalLeak': '{n} evaluation texts also appear in the training data: the score will look better than it is.',
  'check.evalRows': 'Evaluation file: {usable} usable rows of {rows}.',
  'data.reading': 'Reading {name}: {done} of {total}…',
  'data.parsing': 'Parsing {name} ({size}) in the background…',
  'data.loaded': '{name}: {format}, {rows} rows, columns: {columns}',
  'model.fetching': 'Downloading {file}: {done} of {total}',
  'model.fromCache': '{file}: from the browser cache',
  'model.loading': 'Checking and loading the weights…',
  'model.loaded': 'Loaded.',
  'model.memory': 'Estimated memory to train at batch {batch} × {len} tokens with this strategy ({trainable} of {parameters} parameters train): {total} (weights {weights}, gradients {gradients}, AdamW state {optimizer}, activations {activations}).',
  'progress.idle': 'not started',
  'progress.line': 'step {step}/{total} · epoch {epoch}/{epochs} · loss {loss} · {exs} examples/s · {toks} tokens/s · {elapsed} elapsed · ETA {eta}',
  'train.before': 'Evaluating the model before fine-tuning (step 0)…',
  'train.finished': 'Training finished.',
  'train.stopped': 'Stopped at step {step}.',
  'train.failed': 'Training failed at step {step}.',
  'train.pause': 'Pause',
  'train.resume': 'Resume',
  'results.before': 'before (step 0)',
  'results.after': 'after (step {step})',
  'results.count': '{shown} of {total} shown',
  'try.predicted': 'Predicted: {label} ({p})',
  'export.done': 'Archive ready: {name}',
  'trainable.line': 'Training {n} of {total} parameters ({pct}): {groups}',
  'trainable.unfrozen': 'step {step}: unfroze {group}; now training {n} parameters',
  'train.earlyStop': 'Early stopping at step {step}: no better {metric} for {patience} evaluations; kept the weights of step {best} ({metric} {value}).',
  'train.bestKept': 'Kept the best weights, from step {best} ({metric} {value}).',
};

const ZH = {
  tagline: '在这个浏览器标签页里，用你自己的 GPU 微调语言模型。数据不会离开你的电脑。',
  language: '语言',
  'step.data': '数据',
  'step.model': '模型',
  'step.recipe': '配方',
  'step.train': '训练',
  'step.evaluate': '评估',
  'step.export': '导出',
  'intro.title': '什么是微调？',
  'intro.p1': '预训练语言模型已经懂得很多语言知识。微调就是用你自己带标签的例子再训练它一会儿，让它学会你的任务：情感、主题、垃圾邮件，任何你能标注的东西。',
  'intro.p2': '按下面的步骤来：提供数据、选择模型、设定配方（训练参数）、一边训练一边看曲线、检查效果，然后下载结果。一切都在这个标签页里运行。',
  'intro.hide': '知道了',
  'data.title': '数据',
  'data.explain': '模型要学习的例子：每行一段文本和它的标签。支持 CSV、TSV、JSON Lines 或纯文本（每行一个例子）。文件只在你的浏览器里读取。',
  'data.drop': '把文件拖到这里，或',
  'data.pick': '选择文件',
  'data.or': '或',
  'data.bundled': '使用示例数据集',
  'data.dropHelp': 'CSV、TSV、JSONL 或 TXT，UTF-8 编码。',
  'data.textColumn': '文本列',
  'data.labelColumn': '标签列',
  'data.columnsHelp': '根据列名猜测；猜错了可以修改。',
  'data.checks': '数据检查',
  'data.distribution': '标签分布',
  'data.evalLegend': '评估数据',
  'data.evalSplit': '从训练文件中留出一部分：',
  'data.evalShare': '比例',
  'data.evalFile': '单独的评估文件：',
  'help.evalFraction': '按随机种子分层划分：每个标签在两边所占比例相同。',
  'model.title': '模型',
  'model.explain': '作为起点的预训练模型。小型 BERT 系编码器（例如 MiniLM）在浏览器里训练很快。',
  'model.source': '来源',
  'model.bundled': '内置默认模型：',
  'model.hub': 'Hugging Face 模型 ID：',
  'model.hubHelp': '从 huggingface.co 下载一次 config.json、tokenizer.json 和 model.safetensors，之后保存在浏览器缓存里。',
  'model.local': '本地文件：',
  'model.pickFiles': '选择文件',
  'model.pickFolder': '选择文件夹',
  'model.localHelp': 'config.json、tokenizer.json 和 model.safetensors（tokenizer_config.json 可选），或 Burnish 导出的 .zip，用来评估或继续训练。',
  'model.load': '加载模型',
  'recipe.title': '配方',
  'recipe.explain': '怎样训练。默认值就能用：直接点“开始训练”。每个设置都说明了它的作用以及何时需要修改。',
  'recipe.task': '任务',
  'task.classification': '文本分类',
  'help.task': '给每段文本分配一个标签（情感、主题、垃圾邮件……）。',
  'recipe.strategy': '策略',
  'strategy.full': '全量微调',
  'strategy.top': '顶部若干层 + 分类头',
  'strategy.head': '只训练分类头（冻结编码器）',
  'strategy.lora': 'LoRA（低秩适配器）',
  'recipe.loraRank': 'LoRA 秩',
  'help.loraRank': '每个适配器的大小 r：层权重 W 变为 W + (alpha / r)·A·B，A 有 r 列。秩越高能学得越多，代价也越大；常用 4 到 16。',
  'recipe.loraAlpha': 'LoRA alpha',
  'help.loraAlpha': '把适配器的更新按 alpha / 秩 缩放；通常取秩的两倍。',
  'recipe.loraDropout': 'LoRA dropout',
  'help.loraDropout': '训练时对进入适配器的输入做 dropout（与 PEFT 相同），防止在小数据上过拟合。',
  'recipe.loraTargets': 'LoRA 目标层',
  'help.loraTargets': '每个编码器层中哪些线性层加适配器。query 和 value 是经典选择；加上前馈层训练更多参数，能拟合更难的任务。',
  'recipe.maxGradNorm': '梯度裁剪',
  'help.maxGradNorm': '梯度的最大允许长度（全局 L2 范数）；更长的会被按比例缩小，避免一个异常批次把权重带偏。0 表示不裁剪。',
  'help.strategy': '全量：训练所有权重，最准确，最占内存。顶部若干层：只训练分类头和最上面几层编码器，更快，小数据上更稳。只训练分类头：编码器只作固定的特征提取器，最快，准确率最低。LoRA：预训练权重保持冻结，由小的低秩矩阵学习对所选层的修正；效果接近全量微调，可训练参数只占一小部分，且可以单独分享适配器。',
  'recipe.topLayers': '顶部层数',
  'help.topLayers': '选择“顶部若干层 + 分类头”时：从顶部数起，有多少层编码器和分类头一起训练。',
  'recipe.freezeEmbeddings': '冻结嵌入层',
  'help.freezeEmbeddings': '保持词元和位置嵌入不变。节省内存；在小数据上避免数据中没出现的词发生漂移。',
  'recipe.gradual': '逐层解冻',
  'help.gradual': '先只训练分类头，然后每轮（或每隔 N 步，见下）从顶部再解冻一组层，直到策略允许的范围：新分类头先稳定下来，再去影响预训练的层（ULMFiT）。',
  'recipe.unfreezeEvery': '解冻间隔',
  'help.unfreezeEvery': '两次解冻之间的步数；0 表示每轮解冻一次。',
  'recipe.layerDecay': '逐层学习率衰减',
  'help.layerDecay': '分层学习率：分类头以下第 d 组层的学习率为 lr × decay^d，越底层（越通用）变化越小。1 表示所有层学习率相同；常用 0.8 到 0.95。',
  'recipe.gradAccum': '梯度累积',
  'help.gradAccum': '每次优化器更新使用的小批次数：有效批大小 = 批大小 × 该值，内存只占一个批次。更大的批放不下时使用。',
  'recipe.patience': '早停',
  'help.patience': '所选指标连续这么多次评估没有变好就停止，并保留最好的权重（完整跑完时也会保留）。0 表示关闭。',
  'recipe.schedule': '学习率调度',
  'schedule.linear': '线性衰减',
  'schedule.cosine': '余弦衰减',
  'schedule.constant': '恒定',
  'help.schedule': '预热之后学习率如何变化：直线降到 0、沿余弦曲线下降（开头和结尾更平缓），或保持不变。',
  'recipe.epochs': '轮数',
  'help.epochs': '遍历训练数据的次数。轮数越多拟合越好，直到模型开始死记硬背。',
  'recipe.lr': '学习率',
  'help.lr': 'AdamW 的最大步长。2e-4 适合这个一轮的快速演示；在大数据上长时间训练用 2e-5 到 5e-5。太高会让损失上下乱跳。',
  'recipe.batch': '批大小',
  'help.batch': '每一步的例子数。批越大步子越稳，但需要更多内存。',
  'recipe.maxLen': '最大长度',
  'help.maxLen': '每段文本保留的词元数，更长的会被截断。数据检查会显示有多少会被截断。',
  'recipe.warmup': '预热',
  'help.warmup': '学习率从 0 逐步升高所占的步数比例，之后线性衰减到 0。避免一开始就破坏预训练权重。',
  'recipe.weightDecay': '权重衰减',
  'help.weightDecay': 'AdamW 把权重拉向零的力度，温和地防止过拟合。',
  'recipe.seed': '随机种子',
  'help.seed': '固定打乱顺序、训练/评估划分和新分类头的初始权重：同样的种子得到同样的结果。',
  'recipe.evalEvery': '评估间隔',
  'help.evalEvery': '每隔多少步评估一次；0 表示每轮结束时评估。越频繁曲线越细，但训练越慢。',
  'recipe.download': '下载配方',
  'recipe.load': '载入配方…',
  'recipe.cli': '同一个 JSON 文件也能用于命令行：burnish train --recipe recipe.json',
  'train.title': '训练',
  'train.explain': '每一步给模型看一批例子，计算损失（错得有多离谱），再微调权重让损失变小。损失应该下降；评估曲线显示这种进步是否也适用于模型没见过的例子。',
  'train.forceCpu': '即使有 WebGPU 也使用 CPU',
  'train.reloadNote': '重新加载页面后生效：',
  'train.reloadNow': '立即重新加载',
  'train.start': '开始训练',
  'train.pause': '暂停',
  'train.resume': '继续',
  'train.stop': '停止',
  'train.evaluateOnly': '不训练，直接评估',
  'chart.loss': '每步训练损失',
  'chart.lr': '学习率',
  'chart.eval': '评估',
  'train.stepLog': '每步损失（表格）',
  'results.title': '评估',
  'results.explain': '模型在评估例子上的表现：微调前（第 0 步）和现在。准确率是答对的比例；宏平均 F1 对每个标签的 F1 求平均，稀有标签和常见标签同样重要。',
  'results.examples': '个例子',
  'results.confusion': '混淆矩阵（行：真实标签，列：预测标签）',
  'results.predictions': '预测结果',
  'results.errorsOnly': '只看错误',
  'results.sort': '排序',
  'results.sortOrder': '文件顺序',
  'results.sortAsc': '置信度从低到高',
  'results.sortDesc': '置信度从高到低',
  'try.title': '试一试',
  'try.explain': '输入一段文本，看当前模型给每个标签的概率。',
  'try.button': '分类',
  'export.title': '导出',
  'export.explain': '把微调后的模型下载为一个 .zip：Hugging Face 格式的文件夹（config.json、分词器文件、model.safetensors），transformers 可以用 from_pretrained 直接加载，另附 metrics.json 和 recipe.json。在“模型 → 本地文件”里载入这个 .zip，可以评估它或继续训练。',
  'export.button': '导出模型 (.zip)',
  footer: 'Burnish 完全在这个标签页里运行：唯一的网络请求是本页自己的文件，以及你要求时从 huggingface.co 下载的模型。',
  'check.ok': '没有发现问题。',
  'check.rows': '{rows} 行中有 {usable} 行可用。',
  'check.emptyText': '{n} 行的文本为空，将被跳过。',
  'check.emptyLabel': '{n} 行的标签为空，将被跳过。',
  'check.duplicates': '{n} 行重复了前面的文本（其中 {c} 行标签不同）。',
  'check.rare': '稀有标签（少于 {k} 个例子）：{list}。模型很难学会它们。',
  'check.oneClass': '只有一个标签（{label}）：分类至少需要两个。',
  'check.truncated': '{of} 段文本中有 {n} 段超过 {max} 个词元，将被截断（最长 {longest}，95% 不超过 {p95}）。',
  'check.notTruncated': '所有文本都不超过 {max} 个词元（最长 {longest}，平均 {mean}）。',
  'check.short': '{n} 段文本少于 3 个词元。',
  'check.sampled': '词元数来自 {of} 段文本中均匀抽取的 {counted} 段。',
  'check.noTokenizer': '加载模型后可以看到词元长度和截断情况。',
  'check.evalUnseen': '评估文件中有训练数据没有的标签：{list}。训练会拒绝它。',
  'check.evalLeak': '{n} 段评估文本也出现在训练数据里：分数会显得比实际好。',
  'check.evalRows': '评估文件：{rows} 行中有 {usable} 行可用。',
  'data.reading': '正在读取 {name}：{done} / {total}…',
  'data.parsing': '正在后台解析 {name}（{size}）…',
  'data.loaded': '{name}：{format}，{rows} 行，列：{columns}',
  'model.fetching': '正在下载 {file}：{done} / {total}',
  'model.fromCache': '{file}：来自浏览器缓存',
  'model.loading': '正在检查并加载权重…',
  'model.loaded': '已加载。',
  'model.memory': '按当前策略（{parameters} 个参数中训练 {trainable} 个）以批大小 {batch} × {len} 个词元训练，估计需要内存 {total}（权重 {weights}，梯度 {gradients}，AdamW 状态 {optimizer}，激活 {activations}）。',
  'progress.idle': '尚未开始',
  'progress.line': '第 {step}/{total} 步 · 第 {epoch}/{epochs} 轮 · 损失 {loss} · 每秒 {exs} 个例子 · 每秒 {toks} 个词元 · 已用 {elapsed} · 预计剩余 {eta}',
  'train.before': '正在评估微调前的模型（第 0 步）…',
  'train.finished': '训练完成。',
  'train.stopped': '在第 {step} 步停止。',
  'train.failed': '训练在第 {step} 步失败。',
  'results.before': '微调前（第 0 步）',
  'results.after': '现在（第 {step} 步）',
  'results.count': '显示 {total} 条中的 {shown} 条',
  'try.predicted': '预测：{label}（{p}）',
  'export.done': '压缩包已就绪：{name}',
  'trainable.line': '正在训练 {total} 个参数中的 {n} 个（{pct}）：{groups}',
  'trainable.unfrozen': '第 {step} 步：解冻 {group}；现在训练 {n} 个参数',
  'train.earlyStop': '在第 {step} 步早停：{metric} 连续 {patience} 次评估没有变好；保留第 {best} 步的权重（{metric} {value}）。',
  'train.bestKept': '保留了最好的权重，来自第 {best} 步（{metric} {value}）。',
};

const DICTS = { en: EN, zh: ZH };
const original = new Map(); // element -> its English text from index.html
let lang = 'en';

export function currentLang() {
  return lang;
}

/** Dynamic text: `t('check.rows', {usable: 3, rows: 4})`. */
export function t(key, vars = {}) {
  const template = DICTS[lang][key] ?? EN[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (vars[name] ?? `{${name}}`).toString());
}

/** Switches the static text (data-i18n elements) and <html lang>. */
export function applyLanguage(next) {
  lang = DICTS[next] ? next : 'en';
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-i18n]')) {
    if (!original.has(el)) original.set(el, el.textContent);
    const key = el.dataset.i18n;
    el.textContent = lang === 'en' ? original.get(el) : (ZH[key] ?? original.get(el));
  }
}

/** The language to start in: saved choice, else the browser's. */
export function initialLanguage() {
  try {
    const saved = localStorage.getItem('burnish.lang');
    if (saved && DICTS[saved]) return saved;
  } catch {
    // storage may be unavailable (private mode); fall through
  }
  return navigator.language?.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export function saveLanguage(value) {
  try {
    localStorage.setItem('burnish.lang', value);
  } catch {
    // not fatal
  }
}
