// Bad input in the page (real wasm, CPU backend): malformed files and wrong choices, each
// answered by its specific message next to the control it concerns, never by an exception.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI, DATA, REPO, TINY, TINY_FILES, chooseTask, messageIn, openPage, waitForState } from './harness.mjs';

let session;
let page;
let dir;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'burnish-bad-'));
  session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  page = session.page;
  await waitForState(page, (s) => s.backend !== null && s.data !== null, 30_000);
  // Hub requests never reach the network in tests: a missing model answers 404.
  await session.context.route('https://huggingface.co/**', (route) => route.fulfill({ status: 404, body: 'Entry not found' }));
});

after(async () => {
  await session.screenshot('bad-input');
  await session.close();
  await rm(dir, { recursive: true, force: true });
});


let fileCount = 0;
/** Writes `content` to a fresh folder (the page keeps File references: never overwrite one). */
async function file(name, content) {
  const sub = path.join(dir, String(++fileCount));
  await mkdir(sub);
  const p = path.join(sub, name);
  await writeFile(p, content);
  return p;
}

async function upload(selector, files) {
  await page.setInputFiles(selector, files);
}

const dataCases = [
  ['invalid UTF-8', () => DATA('bad_utf8.csv'), /invalid UTF-8 on line 3 \(byte \d+\); save the file as UTF-8/],
  ['a row with too many fields', () => DATA('ragged.csv'), /line 3 has 4 fields but the header has 2 \(an unquoted comma inside a field\?\)/],
  ['an empty file', () => file('empty.csv', ''), /empty\.csv: the file is empty/],
  ['a header without rows', () => file('header.csv', 'text,label\n'), /header\.csv: the file has a header but no data rows/],
  ['a broken JSON line', () => file('broken.jsonl', '{"text": "ok", "label": "a"}\n{"text": "oops", "label": \n'), /broken\.jsonl: line 2 is not valid JSON/],
  ['a JSON line that is not an object', () => file('array.jsonl', '["text", "label"]\n'), /array\.jsonl: line 1 is not a JSON object/],
  ['a duplicated column name', () => file('dup.csv', 'text,label,text\na,b,c\n'), /dup\.csv: column "text" appears twice in the header/],
  ['an unsupported file type', () => file('sheet.xlsx', 'PK\x03\x04'), /sheet\.xlsx: unsupported file type/],
];

for (const [what, make, re] of dataCases) {
  test(`data: ${what}`, async () => {
    await upload('#data-file', await make());
    await messageIn(page, '#data-error', re);
  });
}

test('columns: the same column for text and label', async () => {
  await upload('#data-file', DATA('studio-train.csv'));
  await waitForState(page, (s) => s.data?.name === 'studio-train.csv', 20_000);
  await page.selectOption('#label-column', 'phrase');
  await messageIn(page, '#columns-error', /the text and label columns must differ \(both are "phrase"\)/);
  await page.selectOption('#label-column', 'polarity');
  await page.waitForSelector('#columns-error', { state: 'hidden' });
});

test('columns: no label column chosen', async () => {
  await page.selectOption('#label-column', '');
  await messageIn(page, '#columns-error', /choose the label column/);
  await page.selectOption('#label-column', 'polarity');
});

test('data: a single class is flagged, and Start explains it', async () => {
  await upload('#data-file', DATA('one_class.csv'));
  await page.waitForSelector('#data-checks li[data-check="one_class"]');
  assert.match(await page.textContent('#data-checks li[data-check="one_class"]'), /Only one label \(x\)/);
  await page.click('#start');
  await messageIn(page, '#train-error', /the label column "label" has only one class \("x"\); classification needs at least two/);
});

test('eval file: labels the training data does not have', async () => {
  await upload('#data-file', DATA('studio-train.csv'));
  await waitForState(page, (s) => s.data?.name === 'studio-train.csv', 20_000);
  await page.selectOption('#label-column', 'polarity');
  await upload('#eval-file', await file('eval.csv', 'phrase,category,polarity\ngreat,film,positive\nmeh,film,neutral\n'));
  await page.waitForSelector('#data-checks li[data-check="eval_unseen"]');
  assert.match(await page.textContent('#data-checks li[data-check="eval_unseen"]'), /neutral \(1\)/);
  await page.click('#start');
  await messageIn(page, '#train-error', /the evaluation data has labels that the training data does not: neutral/);
  await page.check('input[name="eval-mode"][value="split"]');
  await waitForState(page, (s) => s.evalData === null, 5_000);
});

test('eval file: a malformed one is reported next to it', async () => {
  await upload('#eval-file', DATA('ragged.csv'));
  await messageIn(page, '#eval-error', /ragged\.csv: line 3 has 4 fields/);
  await page.check('input[name="eval-mode"][value="split"]');
});

test('model: files without the weights', async () => {
  await upload('#model-files', TINY_FILES.slice(0, 2));
  await page.click('#load-model');
  await messageIn(page, '#model-error', /Missing model\.safetensors among the chosen files \(config\.json, tokenizer\.json\)/);
});

test('model: a config.json that is not JSON', async () => {
  const bad = await file('config.json', '{"model_type": "bert", ');
  await upload('#model-files', [bad, TINY_FILES[1], TINY_FILES[2]]);
  await page.click('#load-model');
  await messageIn(page, '#model-error', /not valid JSON for a model config/);
});

test('model: an unsupported architecture', async () => {
  const cfg = JSON.parse(await readFile(path.join(TINY, 'config.json'), 'utf8'));
  cfg.model_type = 'gpt2';
  const bad = await file('config.json', JSON.stringify(cfg));
  await upload('#model-files', [bad, TINY_FILES[1], TINY_FILES[2]]);
  await page.click('#load-model');
  await messageIn(page, '#model-error', /gpt2/);
});

test('model: a tokenizer from another model', async () => {
  const other = path.join(REPO, 'www', 'assets', 'models', 'all-MiniLM-L6-v2', 'tokenizer.json');
  const mixed = await file('tokenizer.json', await readFile(other));
  await upload('#model-files', [TINY_FILES[0], mixed, TINY_FILES[2]]);
  await page.click('#load-model');
  await messageIn(page, '#model-error', /the tokenizer has 30522 tokens but config\.json says vocab_size 368: they belong to different models/);
});

test('model: a .zip that is not an archive', async () => {
  await upload('#model-files', await file('model.zip', 'not a zip at all'));
  await page.click('#load-model');
  await messageIn(page, '#model-error', /model\.zip is not a readable \.zip archive/);
});

test('model: a malformed Hugging Face id', async () => {
  await page.fill('#hub-id', 'not a/valid/id');
  await page.click('#load-model');
  await messageIn(page, '#model-error', /"not a\/valid\/id" is not a valid model id/);
});

test('model: a Hugging Face id that does not exist', async () => {
  await page.fill('#hub-id', 'nobody/no-such-model');
  await page.click('#load-model');
  await messageIn(page, '#model-error', /nobody\/no-such-model has no config\.json \(HTTP 404\)/);
});

test('recipe: a learning rate out of range, next to its field', async () => {
  await page.check('input[name="model-source"][value="bundled"]');
  await page.fill('#lr', '5');
  await page.click('#start');
  await messageIn(page, '#err-lr', /Learning rate must be below 1 \(got 5\)/);
  assert.equal(await page.getAttribute('#lr', 'aria-invalid'), 'true');
  await page.fill('#lr', '1e-2');
});

test('recipe: a fractional batch size', async () => {
  await page.fill('#batch-size', '2.5');
  await page.click('#start');
  await messageIn(page, '#err-batch-size', /Batch size must be a whole number \(got 2\.5\)/);
  await page.fill('#batch-size', '8');
});

test('recipe: a max length beyond the model', async () => {
  await page.click('#load-model');
  await waitForState(page, (s) => s.model?.max_position_embeddings === 64, 20_000);
  await page.fill('#max-len', '500');
  await page.click('#start');
  await messageIn(page, '#err-max-len', /Max length must be at most the model's 64 positions \(got 500\)/);
  await page.fill('#max-len', '32');
});

test('recipe: a recipe file with an unknown field', async () => {
  await upload('#recipe-file', await file('recipe.json', JSON.stringify({ epochs: 2, learning_rate: 0.1 })));
  await messageIn(page, '#recipe-error', /recipe\.json: unknown field "learning_rate"/);
});

test('recipe: a recipe file for a task that is not supported', async () => {
  await upload('#recipe-file', await file('recipe.json', JSON.stringify({ task: 'summarization' })));
  await messageIn(page, '#recipe-error', /task "summarization" is not supported \(supported: text-classification, masked-lm, causal-lm, instruct\)/);
});

// One recipe for every task: a recipe.json the CLI wrote after a real run of each task loads in
// the page without a complaint and fills the section of that task (recipe.rs is the one schema).
const FIX = (name) => path.join(REPO, 'tests', 'fixtures', name);
const cliRuns = {
  'text-classification': ['--model', TINY, '--train', DATA('quirks.csv'), '--eval-fraction', '0.34', '--epochs', '1', '--lr', '0.0003', '--batch-size', '4', '--max-len', '24'],
  'masked-lm': ['--task', 'masked-lm', '--model', TINY, '--train', DATA('domain-reviews.txt'), '--epochs', '2', '--lr', '0.004', '--batch-size', '8', '--max-len', '32'],
  'causal-lm': ['--task', 'causal-lm', '--model', FIX('tiny-gpt2'), '--train', DATA('domain-reviews.txt'), '--epochs', '2', '--lr', '0.003', '--batch-size', '4', '--max-len', '32'],
  instruct: ['--task', 'instruct', '--model', FIX('tiny-llama'), '--train', DATA('instruct-pairs.jsonl'), '--epochs', '3', '--lr', '0.005', '--batch-size', '4', '--max-len', '48', '--strategy', 'lora', '--lora-rank', '4'],
};
for (const [task, args] of Object.entries(cliRuns)) {
  test(`recipe: the CLI's recipe.json of a ${task} run loads in the page`, { timeout: 120_000 }, async () => {
    const out = path.join(dir, `cli-${task}`);
    await promisify(execFile)(CLI, ['train', ...args, '--out', out]);
    const written = JSON.parse(await readFile(path.join(out, 'recipe.json'), 'utf8'));
    assert.equal(written.task, task);
    await upload('#recipe-file', path.join(out, 'recipe.json'));
    const log = page.locator('#log');
    if (task === 'causal-lm' || task === 'instruct') {
      await log.filter({ hasText: 'Decoder recipe loaded' }).waitFor({ state: 'attached', timeout: 10_000 });
      // A decoder recipe opens the generative task it belongs to.
      assert.equal(await page.getAttribute('#task-picker [data-task="' + (task === 'instruct' ? 'chat' : 'continue') + '"]', 'aria-pressed'), 'true');
      assert.equal(await page.inputValue('#lm-task'), task);
      assert.equal(Number(await page.inputValue('#lm-epochs')), written.epochs);
      assert.equal(Number(await page.inputValue('#lm-lr')), written.lr);
      assert.equal(Number(await page.inputValue('#lm-batch')), written.batch_size);
      assert.equal(Number(await page.inputValue('#lm-max-len')), written.max_len);
      assert.equal(await page.inputValue('#lm-strategy'), written.strategy);
      if (task === 'instruct') assert.equal(Number(await page.inputValue('#lm-lora-rank')), 4);
    } else {
      await log.filter({ hasText: 'Recipe loaded from recipe.json' }).last().waitFor({ state: 'attached', timeout: 10_000 });
      if (task === 'masked-lm') {
        assert.equal(Number(await page.inputValue('#mlm-epochs')), written.epochs);
        assert.equal(Number(await page.inputValue('#mlm-lr')), written.lr);
      } else {
        assert.equal(Number(await page.inputValue('#epochs')), written.epochs);
        assert.equal(Number(await page.inputValue('#lr')), written.lr);
        assert.equal(Number(await page.inputValue('#batch-size')), written.batch_size);
      }
    }
    assert.equal(await page.locator('#recipe-error').isVisible(), false, 'no recipe error');
  });
}

test('try-it and export before any training', async () => {
  await chooseTask(page, 'classify');
  await page.fill('#try-text', 'hello');
  await page.click('#try-button');
  await messageIn(page, '#try-error', /Start training .* first/);
  await page.click('#export');
  await messageIn(page, '#export-error', /Train a model first/);
});

// In Chinese: the engine's messages are said from their code and values (src/error.rs →
// www/i18n.js ZH_ERRORS), the page's own ones from its catalogue; switching back says them again
// in English.
test('在中文界面: engine and page messages in Chinese, and back in English', async () => {
  await chooseTask(page, 'classify');
  await page.selectOption('#lang', 'zh');
  try {
    await upload('#data-file', DATA('ragged.csv'));
    await messageIn(page, '#data-error', /^ragged\.csv：第 3 行有 4 个字段，但表头有 2 个（字段里有没加引号的逗号？）$/);
    assert.equal((await page.evaluate(() => window.burnishState.errors.at(-1).code)), 'data.ragged');
    await upload('#data-file', await file('empty.csv', ' \n'));
    await messageIn(page, '#data-error', /^empty\.csv：文件是空的$/);
    await upload('#data-file', await file('dup.csv', 'text,label,text\na,b,c\n'));
    await messageIn(page, '#data-error', /^dup\.csv：表头中“text”列出现了两次$/);
    // The page's own checks, coded the same way.
    await upload('#data-file', await file('sheet.xlsx', 'PK\x03\x04'));
    await messageIn(page, '#data-error', /^sheet\.xlsx：不支持的文件类型。/);
    await upload('#model-files', TINY_FILES.slice(0, 2));
    await page.click('#load-model');
    await messageIn(page, '#model-error', /^所选文件（config\.json, tokenizer\.json）中缺少 model\.safetensors。/);
    await upload('#model-files', await file('model.zip', 'not a zip at all'));
    await page.click('#load-model');
    await messageIn(page, '#model-error', /^model\.zip 不是可读取的 \.zip 压缩包/);
    // A config that is not JSON: the code's text keeps the parser's own detail.
    const bad = await file('config.json', '{"model_type": "bert", ');
    await upload('#model-files', [bad, TINY_FILES[1], TINY_FILES[2]]);
    await page.click('#load-model');
    await messageIn(page, '#model-error', /^config\.json：不是有效的模型配置 JSON（EOF while parsing/);
    // Switching the language says the message on show again.
    await page.selectOption('#lang', 'en');
    await messageIn(page, '#model-error', /^config\.json: not valid JSON for a model config/);
    await page.selectOption('#lang', 'zh');
    await messageIn(page, '#model-error', /^config\.json：不是有效的模型配置 JSON/);
    // The page's own check of a field, with the field's Chinese label.
    await page.check('input[name="model-source"][value="bundled"]');
    await page.fill('#lr', '5');
    await page.click('#start');
    await messageIn(page, '#err-lr', /^学习率必须小于 1（现在是 5）。$/);
    // Back to English: the messages on show are said again in English.
    await page.selectOption('#lang', 'en');
    await messageIn(page, '#err-lr', /^Learning rate must be below 1 \(got 5\)\.$/);
  } finally {
    await page.selectOption('#lang', 'en');
    await page.fill('#lr', '1e-2');
    await upload('#data-file', DATA('studio-train.csv'));
    await waitForState(page, (s) => s.data?.name === 'studio-train.csv', 20_000);
  }
});

// Last: runs after every case above.
test('nothing reached the console: every problem above was a message in the page', () => {
  const { problems } = session;
  assert.deepEqual(problems.pageErrors, [], 'page errors');
  // The Hub 404 is the network's own console line; anything else would be a page bug.
  assert.deepEqual(problems.consoleErrors.filter((m) => !/status of 404/.test(m)), [], 'console errors');
});
