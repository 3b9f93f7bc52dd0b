// Task first, simple first: the page opens on the choice of what to do; each task shows its own
// steps; the recipe shows the settings that matter and folds the rest; a setting shows only
// when it applies; the layer picture follows the strategy as it changes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, waitForState } from './harness.mjs';

const visible = (page, ids) => Promise.all(ids.map((id) => page.isVisible(`#${id}`)));
const SECTIONS = ['data-section', 'model-section', 'domain-section', 'recipe-section', 'train-section', 'try-section', 'export-section', 'compare-section', 'multitask-section', 'decoder-model-section', 'lm-data-section', 'lm-recipe-section', 'lm-train-section', 'lm-results-section', 'lm-export-section', 'runs-section'];
const shown = async (page) => (await visible(page, SECTIONS)).flatMap((v, i) => (v ? [SECTIONS[i]] : []));
const steps = (page) => page.$$eval('#steps-list a', (as) => as.map((a) => `${a.textContent}→${a.getAttribute('href')}`));

test('the page opens on the task choice; each task shows its steps', { timeout: 90_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu', task: null });
  try {
    const { page, problems } = session;
    // Nothing but the choice (and the earlier runs) before one is made.
    assert.deepEqual(await shown(page), ['runs-section']);
    assert.equal(await page.isVisible('#task-picker'), true);
    assert.equal(await page.isVisible('#steps'), false);
    assert.equal(await page.locator('#task-picker [data-task]').count(), 6);

    // Keyboard: the first card takes focus with Tab and Enter chooses it.
    await page.focus('#task-picker [data-task="classify"]');
    await page.keyboard.press('Enter');
    assert.equal(await page.getAttribute('#task-picker [data-task="classify"]', 'aria-pressed'), 'true');
    assert.deepEqual(await shown(page), ['data-section', 'model-section', 'domain-section', 'recipe-section', 'train-section', 'try-section', 'export-section', 'runs-section']);
    assert.deepEqual(await steps(page), ['Data→#data-section', 'Model→#model-section', 'Recipe→#recipe-section', 'Train→#train-section', 'Evaluate→#results', 'Export→#export-section']);
    assert.match(new URL(page.url()).search, /task=classify/);
    // Section numbers follow the task's steps; the optional domain stage has none.
    assert.deepEqual(await page.$$eval('#data-h .num, #model-h .num, #recipe-h .num, #train-h .num', (els) => els.map((e) => e.textContent)), ['1', '2', '3', '4']);
    assert.equal(await page.isVisible('#domain-h .num'), false);

    // Simple first: five settings in view, the rest folded, and shown only when they apply.
    for (const id of ['strategy', 'epochs', 'lr', 'batch-size', 'max-len']) assert.equal(await page.isVisible(`#${id}`), true, id);
    for (const id of ['warmup-ratio', 'weight-decay', 'seed', 'layer-lr-decay', 'eval-every', 'top-layers', 'lora-rank']) assert.equal(await page.isVisible(`#${id}`), false, id);
    await page.selectOption('#strategy', 'top');
    assert.equal(await page.isVisible('#top-layers'), true);
    await page.click('#recipe-advanced > summary');
    assert.equal(await page.isVisible('#warmup-ratio'), true);
    assert.equal(await page.isVisible('#unfreeze-every'), false, 'unfreeze interval without gradual unfreezing');
    await page.check('#gradual-unfreeze');
    assert.equal(await page.isVisible('#unfreeze-every'), true);
    assert.equal(await page.isVisible('#lora-rank'), false);

    // The layer picture follows the strategy: tiny-bert has 2 encoder layers.
    const picture = async () => (await waitForState(page, () => true, 0)).layerPicture.map((g) => g.state);
    await page.uncheck('#gradual-unfreeze');
    await page.fill('#top-layers', '1');
    assert.deepEqual(await picture(), ['trains', 'trains', 'frozen', 'frozen']);
    await page.selectOption('#strategy', 'head');
    assert.deepEqual(await picture(), ['trains', 'frozen', 'frozen', 'frozen']);
    await page.selectOption('#strategy', 'lora');
    assert.deepEqual(await picture(), ['trains', 'adapters', 'adapters', 'frozen']);
    assert.equal(await page.isVisible('#lora-rank'), true);
    await page.selectOption('#strategy', 'full');
    await page.check('#freeze-embeddings');
    assert.deepEqual(await picture(), ['trains', 'trains', 'trains', 'frozen']);
    await page.uncheck('#freeze-embeddings');
    await page.fill('#layer-lr-decay', '0.8');
    const groups = (await waitForState(page, () => true, 0)).layerPicture;
    assert.deepEqual(groups.map((g) => g.state), ['trains', 'trains', 'trains', 'trains']);
    assert.deepEqual(groups.map((g) => Number(g.lrFactor.toFixed(3))), [1, 0.8, 0.64, 0.512]);
    assert.equal(await page.locator('#layer-stack li').count(), 4);
    await session.screenshotOf('#recipe-section', 'tasks-recipe');

    // Every other task: its own sections and steps, the decoder ones included.
    const expected = {
      adapt: [['model-section', 'domain-section', 'recipe-section', 'train-section', 'runs-section'], ['Model→#model-section', 'Data→#domain-section', 'Recipe→#recipe-section', 'Train→#train-section']],
      chat: [['decoder-model-section', 'lm-data-section', 'lm-recipe-section', 'lm-train-section', 'lm-results-section', 'lm-export-section', 'runs-section'],
        ['Model→#decoder-model-section', 'Data→#lm-data-section', 'Recipe→#lm-recipe-section', 'Train→#lm-train-section', 'Evaluate→#lm-results-section', 'Export→#lm-export-section']],
      compare: [['data-section', 'model-section', 'recipe-section', 'compare-section', 'runs-section'], ['Data→#data-section', 'Model→#model-section', 'Recipe→#recipe-section', 'Train→#compare-section']],
      multitask: [['data-section', 'model-section', 'recipe-section', 'multitask-section', 'runs-section'], ['Data→#data-section', 'Model→#model-section', 'Recipe→#recipe-section', 'Train→#multitask-section']],
    };
    for (const [task, [sections, stepList]] of Object.entries(expected)) {
      await page.click(`#task-picker [data-task="${task}"]`);
      assert.deepEqual(await shown(page), sections, task);
      assert.deepEqual(await steps(page), stepList, task);
    }
    // Adapting: no labelled data, the masked-LM button is the one to press, the classifier's hidden.
    await page.click('#task-picker [data-task="adapt"]');
    assert.deepEqual(await visible(page, ['adapt-only', 'start', 'evaluate-only', 'strategy', 'mlm-epochs', 'domain-eval-fraction']), [true, false, false, false, true, true]);
    assert.equal(await page.inputValue('#mlm-epochs'), '1');
    // Chat and continue set the decoder's task; continue's data hint is about plain text.
    await page.click('#task-picker [data-task="chat"]');
    assert.equal(await page.inputValue('#lm-task'), 'instruct');
    assert.equal(await page.isVisible('#gen-temperature'), false, 'sampling settings folded');
    await page.click('#task-picker [data-task="continue"]');
    assert.equal(await page.inputValue('#lm-task'), 'causal-lm');
    assert.deepEqual(await visible(page, ['lm-epochs', 'lm-start']), [true, true]);
    assert.match(await page.textContent('#lm-data-section'), /Plain text in the style to learn/);

    // Back to the choice; a link with ?task= opens on that task.
    await page.click('#task-picker [data-task="classify"]');
    await page.click('#change-task');
    assert.deepEqual(await shown(page), ['runs-section']);
    await page.goto(`${session.url}/?model=tiny-bert&backend=cpu&task=chat`);
    assert.equal(await page.getAttribute('#task-picker [data-task="chat"]', 'aria-pressed'), 'true');
    assert.equal(await page.isVisible('#decoder-model-section'), true);
    assert.equal(await page.isVisible('#data-section'), false);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.screenshot('tasks');
    await session.close();
  }
});

test('the task choice and the layer picture in Chinese, at phone width', { timeout: 60_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu', task: null, locale: 'zh-CN', viewport: { width: 390, height: 844 } });
  try {
    const { page, problems } = session;
    assert.equal(await page.textContent('#task-picker-h'), '你想做什么？');
    await page.click('#task-picker [data-task="classify"]');
    assert.deepEqual(await page.$$eval('#steps-list a', (as) => as.map((a) => a.textContent)), ['数据', '模型', '配方', '训练', '评估', '导出']);
    assert.match(await page.textContent('#layer-picture'), /冻结|训练/);
    // Nothing is wider than the phone.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the viewport`);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.screenshot('tasks-zh-phone');
    await session.close();
  }
});
