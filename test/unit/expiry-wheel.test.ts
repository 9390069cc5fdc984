import { describe, expect, it } from 'vitest';
import { ExpiryWheel } from '../../src/gateway/expiry-wheel.js';

describe('ExpiryWheel', () => {
  it('hands out each item once, at its second, in deadline order', () => {
    const wheel = new ExpiryWheel<string>(100);
    wheel.schedule('c', 103);
    wheel.schedule('a', 101);
    wheel.schedule('b', 101);
    expect(wheel.takeDue(100)).toEqual([]);
    expect(wheel.takeDue(101)).toEqual(['a', 'b']);
    expect(wheel.takeDue(102)).toEqual([]);
    expect(wheel.takeDue(110)).toEqual(['c']);
    expect(wheel.takeDue(120)).toEqual([]);
  });

  it('cancel and reschedule move an item (a refresh); a cancelled one never comes due', () => {
    const wheel = new ExpiryWheel<string>(100);
    wheel.schedule('refreshed', 101);
    wheel.schedule('closed', 101);
    wheel.cancel('refreshed', 101);
    wheel.schedule('refreshed', 105);
    wheel.cancel('closed', 101);
    expect(wheel.takeDue(104)).toEqual([]);
    expect(wheel.takeDue(105)).toEqual(['refreshed']);
  });

  it('a deadline already swept past is due on the next sweep, and can still be cancelled', () => {
    const wheel = new ExpiryWheel<string>(100);
    expect(wheel.takeDue(200)).toEqual([]);
    wheel.schedule('late', 150);
    wheel.schedule('cancelled', 150);
    wheel.cancel('cancelled', 150);
    expect(wheel.takeDue(200)).toEqual([]);
    expect(wheel.takeDue(201)).toEqual(['late']);
  });
});
