import type { FilterPlugin, ScorePlugin } from '../framework.js';
import { nodeName, nodeUnschedulable, taintToleration } from './basic.js';
import { nodeAffinity } from './nodeaffinity.js';
import { balancedAllocation, leastAllocated, nodeResourcesFit } from './noderesources.js';
import { interPodAffinity } from './interpodaffinity.js';
import { volumeBinding } from './volumebinding.js';
import { ownerSpread } from './spread.js';
import { podTopologySpread } from './topologyspread.js';

/** Filters in the order kube-scheduler runs them (cheap first; the first failing one names the reason). */
export const defaultFilters: readonly FilterPlugin[] = [nodeUnschedulable, nodeName, taintToleration, nodeAffinity, nodeResourcesFit, volumeBinding, podTopologySpread, interPodAffinity];

export const defaultScores: readonly ScorePlugin[] = [leastAllocated, balancedAllocation, nodeAffinity, taintToleration, interPodAffinity, podTopologySpread, ownerSpread];
