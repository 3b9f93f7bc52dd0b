// The model's layers as a picture: what the recipe freezes, what trains (and from when, with
// gradual unfreezing), and each layer group's learning rate (discriminative rates), updated as
// the strategy changes. The same plan fills the layer table once a run starts, where the engine's
// own layer groups (parameters, LR factors) are shown beside it (steps/train.js renderTrainable).

import { sci } from '../lib/dom.js';

/**
 * The layer groups of an encoder with `layers` layers, top first (as the engine's
 * `layer_groups`: head, encoder layer L-1 … 0, embeddings), and how `recipe` trains each:
 * `state` is 'trains', 'adapters' (LoRA), 'later' (gradual unfreezing) or 'frozen';
 * `startStep` / `startEpoch` (1-based) say when a group starts; `lrFactor` is decay^depth.
 * `stepsPerEpoch` and `totalSteps` are known once a run starts; before, epochs are used.
 */
export function layerPlan({ layers, recipe: r, stepsPerEpoch = null, totalSteps = null }) {
  const names = ['head (pooler + classifier)', ...Array.from({ length: layers }, (_, i) => `encoder layer ${layers - 1 - i}`), 'embeddings'];
  const lora = r.strategy === 'lora';
  const max = r.strategy === 'head' || lora ? 1 : r.strategy === 'top' ? 1 + Math.min(r.top_layers, layers) : layers + 2;
  const decay = Number.isFinite(r.layer_lr_decay) && r.layer_lr_decay > 0 ? r.layer_lr_decay : 1;
  return names.map((name, depth) => {
    const group = { name, depth, lrFactor: decay ** depth, startStep: null, startEpoch: null, state: 'frozen' };
    if (lora && depth >= 1 && depth <= layers) return { ...group, state: 'adapters', startStep: 1, startEpoch: 1 };
    if (depth >= max || (depth === layers + 1 && r.freeze_embeddings)) return group;
    if (!r.gradual_unfreeze || depth === 0) return { ...group, state: 'trains', startStep: 1, startEpoch: 1 };
    // Gradual unfreezing: one more group every `unfreeze_every` steps, or every epoch.
    if (r.unfreeze_every > 0) {
      const step = depth * r.unfreeze_every + 1;
      const late = totalSteps !== null && step > totalSteps;
      return { ...group, state: late ? 'frozen' : 'later', startStep: step, never: late };
    }
    const epoch = depth + 1;
    const late = epoch > r.epochs;
    return { ...group, state: late ? 'frozen' : 'later', startEpoch: epoch, startStep: stepsPerEpoch ? depth * stepsPerEpoch + 1 : null, never: late };
  });
}

/** "step 1", "epoch 3 (step 41)", "frozen", "frozen (would start at step 90)": when a group trains. */
export function startText(g) {
  if (g.state === 'adapters') return 'step 1 (LoRA adapters only)';
  if (g.never) return g.startStep ? `frozen (would start at step ${g.startStep})` : `frozen (would start in epoch ${g.startEpoch})`;
  if (g.state === 'frozen') return 'frozen';
  if (g.startStep === 1) return 'step 1';
  if (g.startStep) return g.startEpoch ? `epoch ${g.startEpoch} (step ${g.startStep})` : `step ${g.startStep}`;
  return `epoch ${g.startEpoch}`;
}

/** The picture's words for a group (`tr` is i18n's t: keys layers.*). */
function stateText(g, tr) {
  if (g.state === 'adapters') return tr('layers.adaptersOnly');
  if (g.never) return g.startStep ? tr('layers.neverStep', { n: g.startStep }) : tr('layers.neverEpoch', { n: g.startEpoch });
  if (g.state === 'frozen') return tr('layers.frozen');
  if (g.startStep && g.startEpoch && g.startStep > 1) return tr('layers.fromEpochStep', { e: g.startEpoch, n: g.startStep });
  if (g.startStep) return tr('layers.fromStep', { n: g.startStep });
  return tr('layers.fromEpoch', { e: g.startEpoch });
}


/** Draws `plan` into the <ol> `list`: one row per group, a bar as long as its learning rate. */
export function renderLayerPicture(list, plan, lr, tr) {
  // A long stack (24 layers) shows its top, the middle folded, and its bottom.
  const shown = plan.length > 10 ? [...plan.slice(0, 5), null, ...plan.slice(-4)] : plan;
  list.replaceChildren(...shown.map((g) => {
    const li = document.createElement('li');
    if (!g) {
      li.className = 'layer folded';
      li.textContent = tr('layers.folded', { n: plan.length - 9 });
      return li;
    }
    li.className = `layer ${g.state}`;
    li.dataset.group = g.name;
    li.dataset.state = g.state;
    const name = document.createElement('span');
    name.className = 'layer-name';
    name.textContent = g.name;
    const what = document.createElement('span');
    what.className = 'layer-state';
    what.textContent = stateText(g, tr);
    const rate = document.createElement('span');
    rate.className = 'layer-lr';
    const trains = g.state !== 'frozen';
    rate.textContent = trains ? `LR ${sci(lr * g.lrFactor, 1)}${g.lrFactor !== 1 ? ` (×${g.lrFactor.toFixed(2)})` : ''}` : '';
    // The bar's length is the group's share of the peak rate (a custom property; no inline style).
    li.style.setProperty('--lr-share', trains ? String(g.lrFactor) : '0');
    li.append(name, what, rate);
    return li;
  }));
}
