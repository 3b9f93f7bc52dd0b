// The model gallery: suggested Hub encoders with languages, size and the memory the form's recipe
// needs, worked out by the engine from each config before any download. The bundled model's row
// must agree with the estimate for the loaded model itself (same config, same recipe).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, openPage, waitForState } from './harness.mjs';

test('model gallery: sizes and memory from the engine, a Chinese model, Use fills the id', { timeout: 120_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu' });
  try {
    const { page, problems } = session;
    let state = await waitForState(page, (s) => s.gallery?.length === 10, 60_000);
    assert.deepEqual(state.errors, []);
    const rows = await page.$$eval('#gallery-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.ok(rows.some((r) => /中文/.test(r[1])), 'a model for Chinese text');
    const byId = Object.fromEntries(state.gallery.map((g) => [g.id, g]));
    // BertModel + pooler + a 2-label head, as transformers counts them.
    assert.equal(byId['google-bert/bert-base-uncased'].parameters, 109_482_240 + 768 * 2 + 2);
    assert.equal(byId['google-bert/bert-base-chinese'].parameters, 102_267_648 + 768 * 2 + 2);
    // …ForSequenceClassification with 2 labels, as transformers counts them (RoBERTa's and
    // DistilBERT's heads hold their own dense layer; their base models have no pooler).
    assert.equal(byId['distilbert/distilbert-base-uncased'].parameters, 66_955_010);
    assert.equal(byId['distilbert/distilbert-base-multilingual-cased'].parameters, 135_326_210);
    assert.equal(byId['FacebookAI/roberta-base'].parameters, 124_647_170);
    assert.equal(byId['FacebookAI/xlm-roberta-base'].parameters, 278_045_186);
    // Larger batches need more memory, on every row.
    const before = state.gallery.map((g) => g.total);
    await page.fill('#batch-size', '32');
    state = await waitForState(page, (s) => s.gallery.every((g, i) => g.total > before[i]), 10_000);

    // The bundled model's row = the estimate for the model once loaded, for the same recipe.
    await page.click('#load-model');
    state = await waitForState(page, (s) => s.model !== null && s.memory?.batch === 32, 60_000);
    assert.deepEqual(state.errors, []);
    const mini = state.gallery.find((g) => g.id === 'sentence-transformers/all-MiniLM-L6-v2');
    assert.equal(mini.total, state.memory.total);
    assert.equal(mini.parameters, state.memory.parameters);

    // Use: the Hub id goes into the form, ready for Load model.
    await page.click('#gallery-table button[aria-label="Use google-bert/bert-base-chinese"]');
    assert.equal(await page.inputValue('#hub-id'), 'google-bert/bert-base-chinese');
    assert.equal(await page.isChecked('input[name="model-source"][value="hub"]'), true);
    await page.click('#gallery-table button[aria-label="Use sentence-transformers/all-MiniLM-L6-v2"]');
    assert.equal(await page.isChecked('input[name="model-source"][value="bundled"]'), true);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.foreignRequests, []);
  } finally {
    await session.screenshotOf('#model-section', 'gallery');
    await session.close();
  }
});

// The generative tasks' gallery: decoders sized from their config.json by the engine
// (estimateDecoderMemoryForConfig); the parameter counts are the ones transformers reports for
// these checkpoints, and the bundled SmolLM2's row equals the estimate once it is loaded.
test('decoder gallery: Llama, Qwen2, Qwen3 and GPT-2 sized from their configs; the bundled one agrees once loaded', { timeout: 180_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu', task: 'chat' });
  try {
    const { page, problems } = session;
    let state = await waitForState(page, (s) => s.decoderGallery?.length === 6, 60_000);
    assert.deepEqual(state.errors, []);
    const byId = Object.fromEntries(state.decoderGallery.map((g) => [g.id, g]));
    assert.equal(byId['HuggingFaceTB/SmolLM2-135M-Instruct'].parameters, 134_515_008);
    assert.equal(byId['HuggingFaceTB/SmolLM2-360M-Instruct'].parameters, 361_821_120);
    assert.equal(byId['Qwen/Qwen2.5-0.5B-Instruct'].parameters, 494_032_768);
    assert.equal(byId['Qwen/Qwen3-0.6B'].parameters, 596_049_920);
    assert.equal(byId['openai-community/gpt2'].parameters, 124_439_808);
    assert.equal(byId['distilbert/distilgpt2'].parameters, 81_912_576);
    const rows = await page.$$eval('#decoder-gallery-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.ok(rows.some((r) => /中文/.test(r[1])), 'a decoder for Chinese text');
    // LoRA (the default here) needs less than full fine-tuning on every row.
    assert.equal(await page.inputValue('#lm-strategy'), 'lora');
    const lora = state.decoderGallery.map((g) => g.total);
    await page.selectOption('#lm-strategy', 'full');
    state = await waitForState(page, (s) => s.decoderGallery.every((g, i) => g.total > lora[i]), 10_000);
    await page.selectOption('#lm-strategy', 'lora');
    state = await waitForState(page, (s) => s.decoderGallery.every((g, i) => g.total === lora[i]), 10_000);

    await page.click('#decoder-bundled');
    state = await waitForState(page, (s) => s.decoder !== null && s.lmMemory !== null, 120_000);
    const smol = state.decoderGallery.find((g) => g.id === 'HuggingFaceTB/SmolLM2-135M-Instruct');
    assert.equal(smol.parameters, state.lmMemory.parameters);
    assert.equal(smol.total, state.lmMemory.total);

    // Use: the id goes into the Hub field, ready for Download and load.
    await page.click('#decoder-gallery-table button[aria-label="Use Qwen/Qwen2.5-0.5B-Instruct"]');
    assert.equal(await page.inputValue('#decoder-hub-id'), 'Qwen/Qwen2.5-0.5B-Instruct');
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.foreignRequests, []);
  } finally {
    await session.screenshotOf('#decoder-model-section', 'decoder-gallery');
    await session.close();
  }
});

// A decoder by its Hub id (routed here to the sharded tiny Llama fixture, which has a chat
// template): config, tokenizer, the shards its index names and the template download, then load.
test('a decoder by its Hugging Face id: sharded weights and the chat template, then from the cache', { timeout: 120_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu', task: 'chat' });
  try {
    const { page, context, problems } = session;
    const served = [];
    const dir = path.join(REPO, 'tests', 'fixtures', 'tiny-llama');
    await context.route('https://huggingface.co/**', async (route) => {
      const url = new URL(route.request().url());
      const m = url.pathname.match(/^\/test-org\/tiny-llama\/resolve\/main\/([\w.-]+)$/);
      served.push(url.pathname);
      const body = m ? await readFile(path.join(dir, m[1])).catch(() => null) : null;
      if (!body) return route.fulfill({ status: 404, body: 'Entry not found', headers: { 'access-control-allow-origin': '*' } });
      return route.fulfill({ status: 200, body, headers: { 'access-control-allow-origin': '*', 'content-length': String(body.length) } });
    });
    await waitForState(page, (s) => s.backend !== null, 30_000);
    await page.fill('#decoder-hub-id', 'test-org/tiny-llama');
    await page.click('#decoder-hub-load');
    let state = await waitForState(page, (s) => s.decoder !== null || s.errors.length > 0, 60_000);
    assert.deepEqual(state.errors, []);
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    assert.equal(state.decoder.source, 'huggingface.co/test-org/tiny-llama');
    assert.equal(state.decoder.layers, config.num_hidden_layers);
    assert.equal(state.decoder.chat_template, true, 'chat_template.jinja came along');
    for (const shard of ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors', 'chat_template.jinja']) {
      assert.ok(served.includes(`/test-org/tiny-llama/resolve/main/${shard}`), `${shard} was fetched`);
    }
    assert.ok(!served.includes('/test-org/tiny-llama/resolve/main/model.safetensors'), 'an indexed model is read by its shards');
    // Again after a reload: from the Cache API, no request at all.
    const before = served.length;
    await page.reload();
    await waitForState(page, (s) => s.backend !== null, 30_000);
    await page.fill('#decoder-hub-id', 'test-org/tiny-llama');
    await page.click('#decoder-hub-load');
    state = await waitForState(page, (s) => s.decoder !== null || s.errors.length > 0, 60_000);
    assert.deepEqual(state.errors, []);
    assert.equal(served.length, before, `downloaded again: ${served.slice(before).join(', ')}`);
    // A model that does not exist: said next to the decoder's controls.
    await page.fill('#decoder-hub-id', 'test-org/no-such-model');
    await page.click('#decoder-hub-load');
    state = await waitForState(page, (s) => s.errors.length > 0, 30_000);
    assert.equal(state.errors[0].concerns, 'decoder');
    assert.match(await page.textContent('#decoder-error'), /test-org\/no-such-model has no config\.json \(HTTP 404\)/);
    assert.deepEqual(problems.pageErrors, []);
    assert.ok(problems.foreignRequests.every((u) => u.startsWith('https://huggingface.co/test-org/')), problems.foreignRequests.join(', '));
  } finally {
    await session.close();
  }
});
