import t from 'tap';
import { formatCpuMilli, parseBytes, parseCpuMilli, parseQuantity } from './quantity.js';

t.test('quantities', async (t) => {
  t.equal(parseCpuMilli('100m'), 100);
  t.equal(parseCpuMilli('1.5'), 1500);
  t.equal(parseCpuMilli(2), 2000);
  t.equal(parseCpuMilli('0.0001'), 1, 'rounds up');
  t.equal(parseBytes('128Mi'), 128 * 1024 * 1024);
  t.equal(parseBytes('1G'), 1e9);
  t.equal(parseBytes('1e3'), 1000);
  t.equal(parseQuantity(undefined), 0);
  t.throws(() => parseQuantity('12XB'), { code: 'ERR_BAD_QUANTITY' });
  t.equal(formatCpuMilli(250), '250m');
  t.equal(formatCpuMilli(3000), '3');
});
