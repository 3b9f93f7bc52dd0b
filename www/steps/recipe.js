// Step "recipe": the few settings that matter first and the rest under Advanced, each shown when
// it applies; limits and help from the engine's schema; the live layer picture; recipe files.

import { t } from '../i18n.js';
import { layerPlan, renderLayerPicture, startText } from '../views/layers.js';
import { showTask } from '../views/tasks.js';
import { $, log, loraTargetBoxes } from '../lib/dom.js';
import { clearErrors, failSaying, failWith, fieldError, guarded, showError } from '../lib/errors.js';
import { on } from '../lib/events.js';
import { bundledModel, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { runChecks } from './data.js';
import { mixWeights, setPendingMixWeights } from './mixing.js';
import { updateGallery, updateMemory } from './model.js';

// The recipe's form fields: recipe key → input id (and the name messages use). Kinds, limits,
// choices and help come from the engine's schema (recipe.rs `FIELDS`, `recipeSchema()`), so the
// page, the CLI and the engine check the same limits.
const RECIPE_FIELDS = {
  epochs: { id: 'epochs' },
  lr: { id: 'lr' },
  batch_size: { id: 'batch-size' },
  max_len: { id: 'max-len' },
  warmup_ratio: { id: 'warmup-ratio' },
  weight_decay: { id: 'weight-decay' },
  seed: { id: 'seed' },
  eval_fraction: { id: 'eval-fraction', name: 'Evaluation share' },
  eval_every: { id: 'eval-every' },
  top_layers: { id: 'top-layers' },
  unfreeze_every: { id: 'unfreeze-every' },
  layer_lr_decay: { id: 'layer-lr-decay' },
  grad_accum: { id: 'grad-accum', name: 'Gradient accumulation' },
  early_stopping_patience: { id: 'early-stopping-patience', name: 'Early stopping patience' },
  max_grad_norm: { id: 'max-grad-norm' },
  lora_rank: { id: 'lora-rank' },
  lora_alpha: { id: 'lora-alpha' },
  lora_dropout: { id: 'lora-dropout' },
  mix_temperature: { id: 'mix-temperature', name: 'Mixing temperature' },
  mlm_epochs: { id: 'mlm-epochs', name: 'Adaptation epochs' },
  mlm_lr: { id: 'mlm-lr', name: 'Adaptation learning rate' },
  mlm_probability: { id: 'mlm-probability', name: 'Masking share' },
};
/** The engine's recipe schema ({fields: [{name, kind, default, min, max, min_exclusive, …}]}), set when the engine loads. */
let recipeSchema = null;
function schemaField(key) {
  const f = recipeSchema?.fields.find((x) => x.name === key);
  if (!f) throw new Error(recipeSchema ? `internal: the engine's recipe has no field "${key}"` : 'The training engine is still loading; try again in a moment.');
  return f;
}
/** `fieldNumber` limits of recipe field `key`: {int, min | gt, max | lt} from the schema. */
export function schemaLimits(key) {
  const f = schemaField(key);
  const out = { int: f.kind === 'integer' };
  if (f.min !== null) out[f.min_exclusive ? 'gt' : 'min'] = f.min;
  if (f.max !== null) out[f.max_exclusive ? 'lt' : 'max'] = f.max;
  return out;
}
/** Puts the schema's limits and help on the recipe inputs (min/max attributes, tooltips). */
function applySchema(schema) {
  recipeSchema = schema;
  for (const [key, { id }] of Object.entries(RECIPE_FIELDS)) {
    const f = schemaField(key);
    const input = $(id);
    if (f.min !== null) input.min = String(f.min);
    if (f.max !== null) input.max = String(f.max);
    if (f.help && !input.title) input.title = f.help;
  }
}
const LORA_TARGETS = ['query', 'key', 'value', 'attention_output', 'intermediate', 'output'];
const RECIPE_CHOICES = { strategy: 'strategy', schedule: 'schedule', early_stopping_metric: 'early-stopping-metric', task_sampling: 'task-sampling' }; // <select>s
const RECIPE_FLAGS = { freeze_embeddings: 'freeze-embeddings', gradual_unfreeze: 'gradual-unfreeze' }; // checkboxes
/** Every recipe key the engine knows (a recipe.json of any task, from the CLI or the page). */
const recipeKeys = () => recipeSchema.fields.map((f) => f.name);

/** A setting shows only when it applies: LoRA's own fields with the LoRA strategy, the number
 * of top layers with "top layers + head", the unfreezing interval with gradual unfreezing. */
export function showStrategyFields() {
  const lora = $('strategy').value === 'lora';
  for (const el of document.querySelectorAll('[data-lora]')) el.hidden = !lora;
  const applies = { top: $('strategy').value === 'top', gradual: $('gradual-unfreeze').checked };
  for (const el of document.querySelectorAll('[data-when]')) el.hidden = !applies[el.dataset.when];
  updateLayerPicture();
}

// The layer picture
// What the strategy freezes and trains, and each group's learning rate, drawn from the form as
// it changes (views/layers.js). Before a model is loaded it shows the bundled model's layers.
let pictureLayers = null;
fetch(`assets/models/${encodeURIComponent(bundledModel)}/config.json`)
  .then((res) => (res.ok ? res.json() : null))
  .then((config) => {
    if (Number.isInteger(config?.num_hidden_layers) && config.num_hidden_layers > 0) pictureLayers = config.num_hidden_layers;
    updateLayerPicture();
  })
  .catch(() => {});

export function updateLayerPicture() {
  const layers = state.model?.layers ?? pictureLayers;
  const figure = $('layer-picture');
  if (!layers) {
    figure.hidden = true;
    return;
  }
  const num = (id, fallback) => (($(id).value !== '' && Number.isFinite(Number($(id).value))) ? Number($(id).value) : fallback);
  const recipe = {
    strategy: $('strategy').value, top_layers: Math.max(1, Math.round(num('top-layers', 2))), freeze_embeddings: $('freeze-embeddings').checked,
    gradual_unfreeze: $('gradual-unfreeze').checked, unfreeze_every: Math.max(0, Math.round(num('unfreeze-every', 0))),
    layer_lr_decay: num('layer-lr-decay', 1), epochs: Math.max(1, Math.round(num('epochs', 1))),
  };
  const plan = layerPlan({ layers, recipe });
  renderLayerPicture($('layer-stack'), plan, num('lr', 2e-4), t);
  state.layerPicture = plan.map((g) => ({ name: g.name, state: g.state, lrFactor: g.lrFactor, start: startText(g) }));
  figure.hidden = false;
}
for (const id of ['strategy', 'top-layers', 'freeze-embeddings', 'gradual-unfreeze', 'unfreeze-every', 'layer-lr-decay', 'lr', 'epochs']) {
  $(id).addEventListener('input', showStrategyFields);
  $(id).addEventListener('change', showStrategyFields);
}
showStrategyFields();

function clearFieldErrors() {
  $('err-lora-targets')?.setAttribute('hidden', '');
  for (const { id } of Object.values(RECIPE_FIELDS)) {
    $(id).removeAttribute('aria-invalid');
    const el = $(`err-${id}`);
    if (el) el.hidden = true;
  }
}

/** The recipe from the form; a bad field throws a message shown next to that field. */
export function readRecipe() {
  clearFieldErrors();
  const recipe = { task: $('task').value };
  for (const [key, field] of Object.entries(RECIPE_FIELDS)) {
    const spec = { ...field, ...schemaLimits(key) };
    const input = $(spec.id);
    const raw = input.value.trim();
    const value = Number(raw);
    let problem = null; // [catalogue key, the limit it names]
    if (raw === '' || !Number.isFinite(value)) problem = ['field.number'];
    else if (spec.int && !Number.isInteger(value)) problem = ['field.whole'];
    else if (spec.min !== undefined && value < spec.min) problem = ['field.min', spec.min];
    else if (spec.max !== undefined && value > spec.max) problem = ['field.max', spec.max];
    else if (spec.gt !== undefined && !(value > spec.gt)) problem = ['field.gt', spec.gt];
    else if (spec.lt !== undefined && !(value < spec.lt)) problem = ['field.lt', spec.lt];
    else if (key === 'max_len' && state.model && value > state.model.max_position_embeddings) {
      problem = ['field.positions', state.model.max_position_embeddings];
    }
    if (problem) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      // The field's name is its label, read when the message is said (in the language on show).
      const label = () => spec.name ?? (input.labels[0]?.textContent.trim() || key);
      failSaying(`field:${spec.id}`, problem[0], { get name() { return label(); }, got: raw, limit: problem[1] });
    }
    recipe[key] = value;
  }
  for (const [key, id] of Object.entries(RECIPE_CHOICES)) recipe[key] = $(id).value;
  for (const [key, id] of Object.entries(RECIPE_FLAGS)) recipe[key] = $(id).checked;
  recipe.lora_targets = loraTargetBoxes().filter((b) => b.checked).map((b) => b.value);
  if (recipe.strategy === 'lora' && !recipe.lora_targets.length) {
    loraTargetBoxes()[0].focus();
    failWith('field:lora-targets', 'Choose at least one layer for the LoRA adapters (query and value is the usual choice).');
  }
  recipe.mix_weights = mixWeights();
  if ($('text-column').value) recipe.text_column = $('text-column').value;
  if ($('label-column').value) recipe.label_column = $('label-column').value;
  recipe.domain_text_column = $('domain-column').value || 'text';
  return recipe;
}

/** Fills the generative-model section from a decoder recipe (causal-lm or instruct). */
function applyDecoderRecipe(recipe, source) {
  const set = (id, v) => { if (v !== undefined) $(id).value = String(v); };
  set('lm-task', recipe.task);
  set('lm-epochs', recipe.epochs);
  set('lm-lr', recipe.lr);
  set('lm-batch', recipe.batch_size);
  set('lm-max-len', recipe.max_len);
  if (recipe.strategy === 'full' || recipe.strategy === 'lora') $('lm-strategy').value = recipe.strategy;
  set('lm-lora-rank', recipe.lora_rank);
  set('lm-lora-alpha', recipe.lora_alpha);
  set('lm-lora-dropout', recipe.lora_dropout);
  if (Array.isArray(recipe.lora_targets)) {
    const option = [...$('lm-lora-targets').options].find((o) => o.value === recipe.lora_targets.join(','));
    if (option) $('lm-lora-targets').value = option.value;
    else log(`${source}: LoRA targets ${recipe.lora_targets.join(', ')} are not one of the page's choices; keeping ${$('lm-lora-targets').value}.`);
  }
  if (recipe.prompt_template !== undefined) $('lm-template-text').value = recipe.prompt_template;
  $('lm-strategy').dispatchEvent(new Event('change'));
  log(`Decoder recipe loaded from ${source} into the generative model's recipe.`);
}

/** Fills the form from a recipe JSON text (the page's download, or the CLI's recipe.json). */
export function applyRecipeText(text, source) {
  let recipe;
  try {
    recipe = JSON.parse(text);
  } catch (err) {
    failWith('recipe', `${source} is not valid JSON: ${err.message}`);
  }
  if (!recipe || typeof recipe !== 'object' || Array.isArray(recipe)) failWith('recipe', `${source} must be a JSON object like {"epochs": 3, "lr": 5e-5}.`);
  const known = recipeKeys();
  const unknown = Object.keys(recipe).filter((k) => !known.includes(k));
  if (unknown.length) failWith('recipe', `${source}: unknown field ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')}).`);
  const tasks = schemaField('task').choices;
  if (recipe.task !== undefined && !tasks.includes(recipe.task)) {
    failWith('recipe', `${source}: task "${recipe.task}" is not supported (supported: ${tasks.join(', ')}).`);
  }
  for (const [key, spec] of Object.entries(RECIPE_FIELDS)) {
    if (recipe[key] === undefined) continue;
    if (typeof recipe[key] !== 'number') failWith('recipe', `${source}: "${key}" must be a number (got ${JSON.stringify(recipe[key])}).`);
  }
  for (const key of Object.keys(RECIPE_CHOICES)) {
    if (recipe[key] === undefined) continue;
    const options = schemaField(key).choices;
    if (!options.includes(recipe[key])) failWith('recipe', `${source}: "${key}" must be one of ${options.join(', ')} (got ${JSON.stringify(recipe[key])}).`);
  }
  for (const key of Object.keys(RECIPE_FLAGS)) {
    if (recipe[key] !== undefined && typeof recipe[key] !== 'boolean') failWith('recipe', `${source}: "${key}" must be true or false (got ${JSON.stringify(recipe[key])}).`);
  }
  if (recipe.task === 'causal-lm' || recipe.task === 'instruct') {
    showTask(recipe.task === 'instruct' ? 'chat' : 'continue');
    applyDecoderRecipe(recipe, source);
    return;
  }
  if (recipe.task === 'masked-lm') {
    // A masked-LM run (burnish train --task masked-lm) is the page's domain-adaptation stage.
    recipe = { ...recipe, mlm_epochs: recipe.epochs ?? 1, mlm_lr: recipe.lr ?? 1e-4, task: 'text-classification' };
    delete recipe.epochs;
    delete recipe.lr;
    log(`${source} is a masked-LM recipe: its epochs and learning rate are set as the domain-adaptation stage (Adapt only runs it alone).`);
    showTask('adapt');
  }
  const targets = recipe.lora_targets;
  if (targets !== undefined && (!Array.isArray(targets) || targets.some((x) => !LORA_TARGETS.includes(x)))) {
    failWith('recipe', `${source}: "lora_targets" must be a list of ${LORA_TARGETS.join(', ')} (got ${JSON.stringify(targets)}).`);
  }
  for (const [key, spec] of Object.entries(RECIPE_FIELDS)) if (recipe[key] !== undefined) $(spec.id).value = String(recipe[key]);
  for (const [key, id] of Object.entries(RECIPE_CHOICES)) if (recipe[key] !== undefined) $(id).value = recipe[key];
  for (const [key, id] of Object.entries(RECIPE_FLAGS)) if (recipe[key] !== undefined) $(id).checked = recipe[key];
  if (targets) for (const box of loraTargetBoxes()) box.checked = targets.includes(box.value);
  const weights = recipe.mix_weights;
  if (weights !== undefined) {
    if (!Array.isArray(weights) || weights.some((w) => typeof w !== 'number' || !(w >= 0))) {
      failWith('recipe', `${source}: "mix_weights" must be a list of numbers ≥ 0, one per training file (got ${JSON.stringify(weights)}).`);
    }
    setPendingMixWeights(weights);
  }
  showStrategyFields();
  updateMemory().catch((err) => showError(err, 'model'));
  if (recipe.task) $('task').value = recipe.task;
  if (recipe.domain_text_column !== undefined) {
    const select = $('domain-column');
    if ([...select.options].some((o) => o.value === recipe.domain_text_column)) select.value = recipe.domain_text_column;
    else select.dataset.wanted = recipe.domain_text_column; // applied when domain text with that column is chosen
  }
  for (const [key, id] of [['text_column', 'text-column'], ['label_column', 'label-column']]) {
    if (recipe[key] === undefined) continue;
    const select = $(id);
    if ([...select.options].some((o) => o.value === recipe[key])) select.value = recipe[key];
    else if (state.data) showError(new Error(`${source}: the data has no column "${recipe[key]}" (columns: ${state.data.columns.join(', ')}); keeping "${select.value}".`), 'columns');
  }
  log(`Recipe loaded from ${source}.`);
  if (state.data) runChecks().catch((err) => showError(err, 'columns'));
}

$('recipe-download').addEventListener('click', guarded('recipe', () => {
  clearErrors('recipe');
  const recipe = readRecipe();
  const blob = new Blob([JSON.stringify(recipe, null, 2) + '\n'], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'recipe.json';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}));
$('recipe-file').addEventListener('change', guarded('recipe', async () => {
  clearErrors('recipe');
  const file = $('recipe-file').files[0];
  if (!file) return;
  try {
    applyRecipeText(await file.text(), file.name);
  } finally {
    $('recipe-file').value = ''; // choosing the same file again fires change again
  }
}));
let memoryTimer = null;
for (const id of ['batch-size', 'max-len', 'strategy', 'top-layers', 'freeze-embeddings', 'lora-rank', 'lora-targets']) {
  $(id).addEventListener(id === 'strategy' || id === 'lora-targets' || id === 'freeze-embeddings' ? 'change' : 'input', () => {
    clearTimeout(memoryTimer);
    memoryTimer = setTimeout(guarded('model', async () => {
      await updateMemory();
      await updateGallery();
      if (id === 'max-len') await runChecks().catch((err) => showError(err, 'columns'));
    }), 300);
  });
}


backendReady.then((info) => applySchema(info.recipe_schema)).catch(() => {}); // (the backend step reports the failure)
on('model-loaded', (files) => {
  updateLayerPicture();
  if (files.recipe) applyRecipeText(new TextDecoder().decode(files.recipe), 'recipe.json in the archive');
});
