#!/usr/bin/env node
/** The CDK CLI's entry point (cdk.json): builds the app and synthesizes it. */
import { buildApp } from "../lib/app.ts";

buildApp().app.synth();
